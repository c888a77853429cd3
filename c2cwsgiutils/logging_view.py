"""The log level view, ``{C2C_BASE_PATH}/logging/level``: read or change a logger's level at run time.

On when ``LOG_VIEW_SECRET`` is set. A change is broadcast (:mod:`c2cwsgiutils.broadcast`): it
reaches every worker of this gunicorn and of every container sharing the Redis, and it is stored,
so that a worker started later applies it too. With ``duration=`` (``10m``, ``90s``) each worker
puts the level back by itself when the time is up.

Every parameter is bounded: ``name`` is a dotted logger name of at most :data:`MAX_NAME_LENGTH`
characters, ``level`` one of :data:`LEVELS`, ``duration`` more than 0 and at most
:data:`MAX_DURATION`, and at most :data:`MAX_OVERRIDES` loggers are overridden at once; beyond
them, a 400 names the limit.
"""

import contextlib
import dataclasses
import logging
import math
import re
import threading
import time
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast, request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, parse_duration, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.responses import json_error, json_response

CHANNEL = "c2c_logging_level"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
LOG = logging.getLogger(__name__)

MAX_NAME_LENGTH = 255
"""The longest logger name: a dotted module path is far shorter, and each name read makes a logger."""
MAX_DURATION = 7 * 24 * 3600.0
"""The longest ``duration``, a week: more than a debugging session needs; a lasting level is configuration."""
MAX_OVERRIDES = 100
"""How many loggers may have a level set at run time at once (each is stored, and replayed by each worker)."""
_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*")
_SHOWN = 40  # characters of a refused value that an error message shows


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
        """Set a logger's level, until ``until`` (a Unix time) if given; return its state.

        The level goes back after :data:`MAX_DURATION` at the latest: a later ``until`` comes from
        a clock behind the sender's, or from a stored call the view never makes.
        """
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
                    delay = min(until - time.time(), MAX_DURATION)
                    timer = threading.Timer(delay, self.revert, args=(name,))
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
        """Cancel the timers and give every overridden logger back its configured level (for tests)."""
        with self.lock:
            for timer in self.timers.values():
                timer.cancel()
            self.timers.clear()
            for name, configured in self.configured.items():
                logging.getLogger(name or None).setLevel(configured)
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


def logger_name(raw: str) -> str:
    """Return the logger that the ``name`` parameter names (``root`` or nothing: the root, ``""``).

    Raises ValueError unless it is a dotted name (letters, digits, ``_`` and ``-`` between the
    dots) of at most :data:`MAX_NAME_LENGTH` characters.
    """
    if raw in ("root", ""):
        return ""
    if len(raw) > MAX_NAME_LENGTH:
        raise ValueError(f"at most {MAX_NAME_LENGTH} characters")
    if _NAME.fullmatch(raw) is None:
        raise ValueError("expected a dotted logger name such as sqlalchemy.engine")
    return raw


def parse_level_duration(raw: str) -> float:
    """Parse ``duration`` (``90s``, ``10m``, ``2h``): more than 0, at most :data:`MAX_DURATION`."""
    seconds = parse_duration(raw)
    if not seconds > 0:
        raise ValueError("must be more than 0")
    if seconds > MAX_DURATION:
        raise ValueError(f"at most {MAX_DURATION / 3600:g}h (a week)")
    return seconds


def _shown(value: str) -> str:
    """Quote a refused value for an error message, cut short: the client knows what it sent."""
    return repr(value) if len(value) <= _SHOWN else f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def _set_level(name: str, level: str, until: float | None = None) -> dict[str, Any]:
    """Apply a level in this process: the broadcast's callback, run in every worker.

    Refuses (ValueError, logged by the broadcast) a call the view does not make: one stored by
    another version, or written into Redis by hand, must not break a worker's listener.
    """
    if not isinstance(name, str) or logger_name(name) != name:
        raise ValueError(f"not a logger name: {name!r:.60}")
    if level not in LEVELS:
        raise ValueError(f"not a level: {level!r:.60}")
    return OVERRIDES.apply(name, level, None if until is None else _time(until))


def _time(value: object) -> float:
    """Return ``value`` as a finite Unix time; raise ValueError if it is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int beyond what a float holds
            if math.isfinite(seconds := float(value)):
                return seconds
    raise ValueError(f"until is not a time: {value!r:.60}")


def _expired(params: dict[str, Any], now: float) -> bool:
    until = params.get("until")
    return isinstance(until, int | float) and until <= now


def overrides() -> dict[str, dict[str, Any]]:
    """Return the levels set at run time that still hold, by logger name.

    Raises :class:`c2cwsgiutils.broadcast.TransportError` when they cannot be read now.
    """
    now = time.time()
    return {
        name: {"level": params.get("level"), **({"until": params["until"]} if params.get("until") else {})}
        for name, params in broadcast.stored(CHANNEL).items()
        if not _expired(params, now)
    }


def _room_for(name: str) -> bool:
    """Tell whether ``name`` may be overridden: it is already, or fewer than MAX_OVERRIDES loggers are.

    Forgets the expired overrides on the way, each only if nobody changed it since it was read.
    While the stored levels cannot be read, yes: the change is queued, and the broadcast bounds
    its queue.
    """
    try:
        stored = broadcast.stored(CHANNEL)
    except broadcast.TransportError:
        return True
    now = time.time()
    live = set()
    for key, params in stored.items():
        if _expired(params, now):
            broadcast.forget(CHANNEL, key, params)
        else:
            live.add(key)
    return name in live or len(live) < MAX_OVERRIDES


def _list(request_id: str | None) -> Response:
    try:
        return json_response({"status": 200, "overrides": overrides()})
    except broadcast.TransportError as error:
        LOG.warning("cannot list the log levels set at run time: %s", error)
        return json_error(
            503,
            "the log levels set at run time cannot be read now: Redis does not answer; try again later",
            request_id,
            stored="unknown",
        )


def _wanted(params: Any) -> tuple[str, str | None, float | None, str | None]:
    """Return the logger, level, ``until`` and duration the parameters ask for.

    Raises ValueError naming the parameter that is out of its bounds.
    """
    raw_name = params["name"]
    try:
        name = logger_name(raw_name)
    except ValueError as error:
        raise ValueError(f"name={_shown(raw_name)}: {error}") from None
    level = params.get("level")
    if level is None:
        return name, None, None, None
    level = level.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"unknown level {_shown(level)}: use one of {', '.join(LEVELS)}")
    duration = params.get("duration") or None
    if duration is None:
        return name, level, None, None
    try:
        return name, level, time.time() + parse_level_duration(duration), duration
    except ValueError as error:
        raise ValueError(f"duration={_shown(duration)}: {error}") from None


def level_view(request: Request) -> Response:
    """Read a level (``?name=N``), set it (``&level=L[&duration=D]``), or list the overrides (no name)."""
    request_id = request_tracking.request_id(request)
    if "name" not in request.params:
        return _list(request_id)
    try:
        name, level, until, duration = _wanted(request.params)
    except ValueError as error:
        return json_error(400, str(error), request_id)
    if level is None:
        return json_response(describe(name))
    if not _room_for(name):
        return json_error(
            400,
            f"levels are set at run time for at most {MAX_OVERRIDES} loggers at once: "
            "set one of them again, or wait until one with a duration expires",
            request_id,
        )
    LOG.info(
        "setting the log level of %s to %s%s", name or "root", level, f" for {duration}" if duration else ""
    )
    broadcast.broadcast(CHANNEL, {"name": name, "level": level, "until": until}, store=True, state_key=name)
    if name in broadcast.queued(CHANNEL):
        body = {**describe(name), "status": 202, "message": broadcast.QUEUED_MESSAGE}
        return json_response(body, status=202)
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


def install_subscriber(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.logging_view")``."""
    config.include(includeme)
