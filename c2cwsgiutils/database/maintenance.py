"""Read-only database maintenance: ``{C2C_BASE_PATH}/db/maintenance?readonly=true|false``.

On when ``DB_MAINTENANCE_SECRET`` is set. ``readonly=true`` is broadcast (stored, so workers
started later follow it) to every worker of every container: from then on, the sessions of
:func:`c2cwsgiutils.db.setup_session` and ``request.dbsession`` send everything to the replica,
so that the primary can be stopped and upgraded while the service keeps answering reads. A
request that tries to write gets a JSON 503 with ``Retry-After`` instead of PostgreSQL's
read-only error as a 500. ``readonly=false`` sends traffic back as usual, without a restart.

This module does not import SQLAlchemy: the routing session reads :data:`MAINTENANCE`.
"""

import dataclasses
import datetime
import logging
import os
import threading
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast, request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, parse_positive_duration, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.responses import json_error, json_response

CHANNEL = "c2c_db_maintenance"
LOG = logging.getLogger("c2cwsgiutils.db")
MESSAGE = "the database is in read-only maintenance: writes are refused for now, try again later"
_RETRY_AFTER_KEY = "c2cwsgiutils.database.maintenance.retry_after"


@dataclasses.dataclass(frozen=True)
class DbMaintenanceSettings(SettingsGroup):
    """The read-only maintenance switch."""

    TITLE = "Database maintenance"

    secret: str | None = setting(
        "DB_MAINTENANCE_SECRET",
        "c2c.db_maintenance_secret",
        None,
        "Switches on `{C2C_BASE_PATH}/db/maintenance` (read-only maintenance: every worker sends its "
        "database traffic to the replica), and is the secret it asks for.",
        secret=True,
    )
    retry_after: float = setting(
        "C2C_DB_MAINTENANCE_RETRY_AFTER",
        "c2c.db_maintenance_retry_after",
        60.0,
        "The `Retry-After` of the 503 answered to a request that writes during read-only maintenance "
        "(a duration, sent rounded up to whole seconds).",
        parse=parse_positive_duration,
        default_doc="`60s`",
    )


class ReadOnlyMaintenanceError(Exception):
    """A request tried to write while the database is in read-only maintenance."""

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


class Maintenance:
    """The maintenance state of a process, set by the broadcast's callback in every worker.

    Process-wide because the broadcast's subscriptions are; :meth:`reset` is for tests.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # A plain attribute: the routing session reads it for every statement.
        self.readonly = False
        self.since: float | None = None

    def apply(self, readonly: bool, since: float | None = None) -> dict[str, Any]:
        """Switch this process (the broadcast's callback); answer its pid and state."""
        with self.lock:
            changed = readonly != self.readonly
            self.readonly = bool(readonly)
            self.since = since if readonly else None
        if changed:
            LOG.warning(
                "read-only database maintenance %s in process %d",
                "on: every session uses the replica, writes are refused" if readonly else "off",
                os.getpid(),
            )
        return {"pid": os.getpid(), "readonly": self.readonly}

    def state(self) -> dict[str, Any]:
        """Return ``{"readonly": bool, "since": ISO time or None}``."""
        since = self.since
        return {
            "readonly": self.readonly,
            "since": None
            if since is None
            else datetime.datetime.fromtimestamp(since, datetime.UTC).isoformat(timespec="seconds"),
        }

    def reset(self) -> None:
        """Leave maintenance without broadcasting (for tests)."""
        with self.lock:
            self.readonly = False
            self.since = None


MAINTENANCE = Maintenance()
"""The maintenance state of this process."""


def _apply(readonly: bool, since: float | None = None) -> dict[str, Any]:
    return MAINTENANCE.apply(readonly, since)


def maintenance_view(request: Request) -> Response:
    """Say whether the database is in read-only maintenance; ``?readonly=true|false`` switches it."""
    raw = request.params.get("readonly")
    if raw is not None:
        try:
            wanted = parse_bool(raw)
        except ValueError as error:
            return json_error(400, f"readonly={raw!r}: {error}", request_tracking.request_id(request))
        LOG.warning("switching the read-only database maintenance %s", "on" if wanted else "off")
        since = datetime.datetime.now(datetime.UTC).timestamp() if wanted else None
        broadcast.broadcast(CHANNEL, {"readonly": wanted, "since": since}, store=True, state_key="readonly")
    if "readonly" in broadcast.queued(CHANNEL):
        # Redis does not answer: this worker switched, the others will once it answers again.
        body = {"status": 202, **MAINTENANCE.state(), "message": broadcast.QUEUED_MESSAGE}
        return json_response(body, status=202, headers=[("Cache-Control", "no-store")])
    return json_response({"status": 200, **MAINTENANCE.state()}, headers=[("Cache-Control", "no-store")])


def retry_after(request: Request) -> str:
    """Return the ``Retry-After`` value of the app: whole seconds, at least 1."""
    seconds = request.registry.get(_RETRY_AFTER_KEY, 60.0)
    return str(max(1, int(-(-seconds // 1))))


def refused_view(exc: ReadOnlyMaintenanceError, request: Request) -> Response:
    """Answer a write during read-only maintenance: 503 with ``Retry-After``."""
    LOG.info("%s %s: write refused during read-only maintenance", request.method, request.path)
    response = json_error(503, MESSAGE, request_tracking.request_id(request))
    response.headers["Retry-After"] = retry_after(request)
    response.headers["Cache-Control"] = "no-store"
    return response


def includeme(config: Configurator) -> None:
    """Follow the maintenance switch, answer refused writes with a 503, and add the view if its secret is set.

    Included by :func:`c2cwsgiutils.db.setup_session` and :func:`c2cwsgiutils.db.setup_request_session`.
    """
    if not first_time(config, "db_maintenance"):
        return
    settings = DbMaintenanceSettings.of(config)
    config.registry[_RETRY_AFTER_KEY] = settings.retry_after
    config.add_exception_view(refused_view, context=ReadOnlyMaintenanceError)
    # Every worker follows the switch, even one whose view is off: the state is the app's.
    config.include("c2cwsgiutils.broadcast")
    broadcast.subscribe(CHANNEL, _apply)
    add_ops_view(
        config,
        "db_maintenance",
        "/db/maintenance",
        maintenance_view,
        secret=DbMaintenanceSettings.declaration("secret"),
        request_method=("GET", "POST"),
    )
