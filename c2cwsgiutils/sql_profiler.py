"""The SQL profiler, ``{C2C_BASE_PATH}/sql_profiler``: ``EXPLAIN ANALYZE`` of each distinct ``SELECT``.

On when ``SQL_PROFILER_SECRET`` is set. ``?enable=1`` / ``?enable=0`` switches it on every worker
through the broadcast (stored, so a worker started later follows). While it is on, the first time
a worker runs a ``SELECT`` of a given shape (the SQL text with its placeholders) on PostgreSQL, it
runs ``EXPLAIN ANALYZE`` of the same statement and parameters in a savepoint that is rolled back,
and logs the plan to the ``c2cwsgiutils.sql_profiler`` logger. While it is off, no SQLAlchemy
event listener is installed.
"""

import dataclasses
import json
import logging
import re
import sys
import threading
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast, extras, request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.request_tracking import current_request_id
from c2cwsgiutils.responses import json_error, json_response

CHANNEL = "c2c_sql_profiler"
LOG = logging.getLogger(__name__)
MAX_SHAPES = 10_000
"""Distinct statements remembered per worker; beyond it, the memory starts again from empty."""
_SAVEPOINT = "c2cwsgiutils_sql_profiler"


@dataclasses.dataclass(frozen=True)
class SqlProfilerSettings(SettingsGroup):
    """The SQL profiler view."""

    TITLE = "SQL profiler"

    secret: str | None = setting(
        "SQL_PROFILER_SECRET",
        "c2c.sql_profiler_secret",
        None,
        "Switches on `{C2C_BASE_PATH}/sql_profiler`, and is the secret it asks for.",
        secret=True,
    )


class Profiler:
    """The process-wide profiler switch: SQLAlchemy's engine events are process-wide too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.local = threading.local()

    @property
    def enabled(self) -> bool:
        """Say whether the listener is installed."""
        if "sqlalchemy" not in sys.modules:
            return False
        from sqlalchemy import event  # noqa: PLC0415
        from sqlalchemy.engine import Engine  # noqa: PLC0415

        return event.contains(Engine, "after_cursor_execute", self.after_cursor_execute)

    def set_enabled(self, enable: bool) -> dict[str, Any]:
        """Install or remove the listener in this process; the broadcast's callback."""
        extras.require("sqlalchemy", "db", "c2cwsgiutils.sql_profiler")
        from sqlalchemy import event  # noqa: PLC0415
        from sqlalchemy.engine import Engine  # noqa: PLC0415

        with self.lock:
            listening = event.contains(Engine, "after_cursor_execute", self.after_cursor_execute)
            if enable and not listening:
                self.seen.clear()
                event.listen(Engine, "after_cursor_execute", self.after_cursor_execute)
            elif not enable and listening:
                event.remove(Engine, "after_cursor_execute", self.after_cursor_execute)
        return {"status": 200, "enabled": enable}

    def after_cursor_execute(  # noqa: PLR0917 (SQLAlchemy's signature)
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        """Explain a statement the first time its shape is seen."""
        if executemany or conn.dialect.name != "postgresql" or getattr(self.local, "busy", False):
            return
        if getattr(cursor, "name", None):  # a server-side cursor, still being read: leave it alone
            return
        from c2cwsgiutils.database.routing import SELECT_TEXT  # noqa: PLC0415

        if statement in self.seen or SELECT_TEXT.match(statement) is None:
            return
        with self.lock:
            if statement in self.seen:
                return
            if len(self.seen) >= MAX_SHAPES:
                self.seen.clear()
            self.seen.add(statement)
        self.local.busy = True
        try:
            self._explain(conn.connection.dbapi_connection, statement, parameters)
        finally:
            self.local.busy = False

    def _explain(self, dbapi_connection: Any, statement: str, parameters: Any) -> None:
        # EXPLAIN ANALYZE runs the statement, in a savepoint rolled back right after; in a
        # read-only one, so that it cannot write. Some effects outlive a rollback (a sequence's
        # nextval, a session's advisory lock): a statement that calls a volatile function is
        # only planned, not run.
        in_transaction = not getattr(dbapi_connection, "autocommit", False)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SAVEPOINT {_SAVEPOINT}" if in_transaction else "BEGIN")
            try:
                cursor.execute("SET LOCAL transaction_read_only = on")
                volatile = _volatile_functions(cursor, statement, parameters)
                analyze = "" if volatile else "ANALYZE "
                cursor.execute(f"EXPLAIN {analyze}{statement}", parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            finally:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}" if in_transaction else "ROLLBACK")
                if in_transaction:
                    cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        except Exception:  # the profiler must not break the request it looks at
            LOG.warning("could not explain this statement: %s", statement, exc_info=True)
            return
        finally:
            cursor.close()
        if volatile:
            how = f"EXPLAIN (not ANALYZE: it calls the volatile {', '.join(sorted(volatile))})"
        else:
            how = "EXPLAIN ANALYZE"
        LOG.info("%s for request %s of:\n%s\n%s", how, current_request_id.get() or "-", statement, plan)

    def reset(self) -> None:
        """Remove the listener and forget the statements seen (for tests)."""
        if self.enabled:
            self.set_enabled(False)
        self.seen.clear()


# A function call in the expressions of a verbose plan: a name, maybe quoted, then "(".
_CALL = re.compile(r'(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*\(')


def _called_names(plan: Any, names: set[str]) -> set[str]:
    """Collect the names of the functions a JSON plan (``EXPLAIN (VERBOSE, FORMAT JSON)``) calls."""
    if isinstance(plan, dict):
        for key, value in plan.items():
            if key == "Function Name" and isinstance(value, str):
                names.add(value)
            else:
                _called_names(value, names)
    elif isinstance(plan, list):
        for item in plan:
            _called_names(item, names)
    elif isinstance(plan, str):
        for quoted, plain in _CALL.findall(plan):
            names.add(quoted.replace('""', '"') if quoted else plain.lower())
    return names


def _volatile_functions(cursor: Any, statement: str, parameters: Any) -> set[str]:
    """Return the volatile functions the statement calls, as PostgreSQL plans it (without running it).

    A name that is volatile in any schema counts: a wrong guess only costs the ``ANALYZE``.
    """
    cursor.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + statement, parameters)
    plan = cursor.fetchone()[0]
    names = _called_names(json.loads(plan) if isinstance(plan, str) else plan, set())
    if not names:
        return set()
    cursor.execute(
        "SELECT DISTINCT proname FROM pg_catalog.pg_proc WHERE provolatile = 'v' AND proname = ANY(%s)",
        (sorted(names),),
    )
    return {row[0] for row in cursor.fetchall()}


PROFILER = Profiler()


def _set_enabled(enable: bool) -> dict[str, Any]:
    return PROFILER.set_enabled(enable)


def profiler_view(request: Request) -> Response:
    """Say whether the profiler is on; ``?enable=1|0`` switches it on every worker."""
    enable = request.params.get("enable")
    if enable is not None:
        try:
            wanted = parse_bool(enable)
        except ValueError as error:
            return json_error(400, f"enable={enable!r}: {error}", request_tracking.request_id(request))
        LOG.info("switching the SQL profiler %s", "on" if wanted else "off")
        broadcast.broadcast(CHANNEL, {"enable": wanted}, store=True, state_key="enabled")
    if "enabled" in broadcast.queued(CHANNEL):
        # Redis does not answer: this worker switched, the others will once it answers again.
        body = {"status": 202, "enabled": PROFILER.enabled, "message": broadcast.QUEUED_MESSAGE}
        return json_response(body, status=202)
    return json_response({"status": 200, "enabled": PROFILER.enabled})


def includeme(config: Configurator) -> None:
    """Add the SQL profiler view when ``SQL_PROFILER_SECRET`` is set."""
    if not first_time(config, "sql_profiler"):
        return
    path = add_ops_view(
        config,
        "sql_profiler",
        "/sql_profiler",
        profiler_view,
        secret=SqlProfilerSettings.declaration("secret"),
        request_method=("GET", "POST"),
    )
    if path is not None:
        extras.require("sqlalchemy", "db", "the SQL profiler (SQL_PROFILER_SECRET)")
        config.include("c2cwsgiutils.broadcast")
        broadcast.subscribe(CHANNEL, _set_enabled)


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.sql_profiler")``."""
    config.include(includeme)
