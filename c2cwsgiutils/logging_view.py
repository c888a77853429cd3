"""The log level view, ``{C2C_BASE_PATH}/logging/level``: read or change a logger's level at run time.

On when ``LOG_VIEW_SECRET`` is set. A change is broadcast (:mod:`c2cwsgiutils.broadcast`): it
reaches every worker of this gunicorn and of every container sharing the Redis, and it is stored,
so that a worker started later applies it too. With ``duration=`` (``10m``, ``90s``) each worker
puts the level back by itself when the time is up.
"""

import dataclasses
import logging
import threading
import time
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast
from c2cwsgiutils.config_utils import SettingsGroup, parse_duration, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.responses import json_error, json_response

CHANNEL = "c2c_logging_level"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoggingViewSettings(SettingsGroup):
    """The log level view."""

    TITLE = "Log level view"

    secret: str | None = setting(
        "LOG_VIEW_SECRET",
        "c2c.log_view_secret",
        None,
        "Switches on `{C2C_BASE_PATH}/logging/level`, and is the secret it asks for.",
        secret=True,
    )


class _Overrides:
    """The levels set at run time in this process: the configured ones to go back to, and timers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configured: dict[str, int] = {}
        self.timers: dict[str, threading.Timer] = {}

    def apply(self, name: str, level: str, until: float | None = None) -> dict[str, Any]:
        """Set a logger's level, until ``until`` (a Unix time) if given; return its state."""
        logger = logging.getLogger(name or None)
        with self.lock:
            self.configured.setdefault(name, logger.level)
            timer = self.timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            if until is not None and until <= time.time():
                logger.setLevel(self.configured.pop(name))  # expired before it reached us
            else:
                logger.setLevel(level)
                if until is not None:
                    timer = threading.Timer(until - time.time(), self.revert, args=(name,))
                    timer.daemon = True
                    timer.name = f"c2cwsgiutils-log-level-{name}"
                    self.timers[name] = timer
                    timer.start()
        return describe(name)

    def revert(self, name: str) -> None:
        """Give a logger back its configured level."""
        with self.lock:
            self.timers.pop(name, None)
            configured = self.configured.pop(name, None)
            if configured is None:
                return
            logging.getLogger(name or None).setLevel(configured)
        LOG.info("log level of %s is back to %s", name or "root", logging.getLevelName(configured))

    def reset(self) -> None:
        """Cancel the timers and forget the overrides (for tests)."""
        with self.lock:
            for timer in self.timers.values():
                timer.cancel()
            self.timers.clear()
            self.configured.clear()


OVERRIDES = _Overrides()
"""The process-wide record of run-time levels: the logging tree is process-wide too."""


def describe(name: str) -> dict[str, Any]:
    """Return a logger's level and effective level."""
    logger = logging.getLogger(name or None)
    return {
        "status": 200,
        "name": name,
        "level": logging.getLevelName(logger.level),
        "effective_level": logging.getLevelName(logger.getEffectiveLevel()),
    }


def _set_level(name: str, level: str, until: float | None = None) -> dict[str, Any]:
    """Apply a level in this process: the broadcast's callback, run in every worker."""
    return OVERRIDES.apply(name, level, until)


def overrides() -> dict[str, dict[str, Any]]:
    """Return the levels set at run time that still hold, by logger name."""
    now = time.time()
    return {
        name: {"level": params["level"], **({"until": params["until"]} if params.get("until") else {})}
        for name, params in broadcast.stored(CHANNEL).items()
        if not params.get("until") or params["until"] > now
    }


def level_view(request: Request) -> Response:
    """Read a level (``?name=N``), set it (``&level=L[&duration=D]``), or list the overrides (no name)."""
    request_id = getattr(request, "c2c_request_id", None)
    name = request.params.get("name")
    if name is None:
        return json_response({"status": 200, "overrides": overrides()})
    name = "" if name == "root" else name
    level = request.params.get("level")
    if level is None:
        return json_response(describe(name))
    level = level.strip().upper()
    if level not in LEVELS:
        return json_error(400, f"unknown level {level!r}: use one of {', '.join(LEVELS)}", request_id)
    until = None
    duration = request.params.get("duration")
    if duration:
        try:
            until = time.time() + parse_duration(duration)
        except ValueError as error:
            return json_error(400, f"duration={duration!r}: {error}", request_id)
    LOG.info(
        "setting the log level of %s to %s%s", name or "root", level, f" for {duration}" if until else ""
    )
    broadcast.broadcast(CHANNEL, {"name": name, "level": level, "until": until}, store=True, state_key=name)
    return json_response(describe(name))


def includeme(config: Configurator) -> None:
    """Add the log level view when ``LOG_VIEW_SECRET`` is set."""
    if not first_time(config, "logging_view"):
        return
    path = add_ops_view(
        config,
        "logging_level",
        "/logging/level",
        level_view,
        secret=LoggingViewSettings.declaration("secret"),
        request_method=("GET", "POST"),
    )
    if path is not None:
        config.include("c2cwsgiutils.broadcast")
        broadcast.subscribe(CHANNEL, _set_level)
