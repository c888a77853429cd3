"""The SQLAlchemy side of :mod:`c2cwsgiutils.db`: the routing session, the replica fallback, SQL request IDs.

Imported only once a database feature is set up (it needs the ``db`` extra).
"""

import logging
import math
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy
from pyramid.threadlocal import manager
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause

from c2cwsgiutils.database.maintenance import MAINTENANCE, ReadOnlyMaintenanceError
from c2cwsgiutils.request_tracking import current_request_id

LOG = logging.getLogger("c2cwsgiutils.db")
FALLBACK = "c2cwsgiutils.replica_fallback"
"""Key of ``ConnectionRecord.info`` marking a replica-pool connection that went to the primary."""
WARNING_INTERVAL = 60.0
APPLICATION_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: pg_stat_activity shows no more

# A plain-text statement that only reads: SELECT, SHOW, VALUES or TABLE after comments and
# whitespace, and no row lock. Anything else (WITH, which may hold a DML, functions...) is a write.
_COMMENTS = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_READ_TEXT = re.compile(rf"^{_COMMENTS}(?:SELECT|SHOW|VALUES|TABLE)\b", re.IGNORECASE | re.DOTALL)
_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)
SELECT_TEXT = re.compile(rf"^{_COMMENTS}SELECT\b", re.IGNORECASE | re.DOTALL)
"""A statement that starts with ``SELECT`` after comments and whitespace (the SQL profiler's test)."""


def _current_request() -> Any:
    return manager.get().get("request")


def needs_primary(clause: Any) -> bool:
    """Say whether a statement must run on the primary: DML, row locks, text that is not a plain read."""
    if isinstance(clause, UpdateBase):
        return True
    if isinstance(clause, TextClause):
        text = clause.text
        return _READ_TEXT.match(text) is None or _ROW_LOCK.search(text) is not None
    return getattr(clause, "_for_update_arg", None) is not None


class Router:
    """Chooses the engine of a request: by method, then the forced routes."""

    READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))

    def __init__(
        self,
        primary: Engine,
        replica: Engine,
        force_master: Iterable[str] | None,
        force_slave: Iterable[str] | None,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.single = primary is replica
        self.force_master = [re.compile(pattern) for pattern in force_master or ()]
        self.force_slave = [re.compile(pattern) for pattern in force_slave or ()]

    def for_request(self, request: Any) -> Engine:
        """Return the engine of a request (the primary outside requests)."""
        if request is None:
            return self.primary
        method = request.method
        if self.force_master or self.force_slave:
            route = f"{method} {request.path}"
            # re.match, as the original: a pattern matches the start, "GET /api/admin" covers
            # "GET /api/admin/x" (end it with "$" to match one path only).
            if any(pattern.match(route) for pattern in self.force_master):
                return self.primary
            if any(pattern.match(route) for pattern in self.force_slave):
                return self.replica
        return self.replica if method in self.READ_METHODS else self.primary


class RoutingSession(Session):
    """A session that reads from the replica and writes to the primary, as :mod:`c2cwsgiutils.db` says."""

    def __init__(self, *args: Any, router: Router, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.c2c_router = router
        self.c2c_forced: Engine | None = None
        # (request, engine): the request this session last served and the engine it uses now.
        self._c2c_state: tuple[Any, Engine] | None = None

    def c2c_use_primary_from_now(self) -> None:
        """Send everything to the primary until the request ends (something was written)."""
        self._c2c_state = (_current_request(), self.c2c_router.primary)

    def get_bind(  # noqa: PLR0911 (one return per rule, in the order they apply)
        self,
        mapper: Any = None,
        *,
        clause: Any = None,
        bind: Any = None,
        _sa_skip_events: bool | None = None,
        _sa_skip_for_implicit_returning: bool = False,
        **kw: Any,
    ) -> Any:
        """Return the engine for this statement."""
        if bind is not None:
            return bind
        router = self.c2c_router
        if MAINTENANCE.readonly:
            # Read-only maintenance wins over every other rule: the primary may be down.
            if clause is not None and needs_primary(clause):
                raise ReadOnlyMaintenanceError()
            return router.replica
        if self.c2c_forced is not None:
            return self.c2c_forced
        if router.single:
            return router.primary
        request = _current_request()
        state = self._c2c_state
        if state is None or state[0] is not request:
            state = self._c2c_state = (request, router.for_request(request))
        engine = state[1]
        if engine is router.primary:
            return engine
        if clause is not None and needs_primary(clause):
            self._c2c_state = (request, router.primary)
            return router.primary
        return engine


@event.listens_for(RoutingSession, "before_flush")
def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if not isinstance(session, RoutingSession):
        return
    if MAINTENANCE.readonly and _has_changes(session):
        raise ReadOnlyMaintenanceError()
    if session.c2c_forced is None:
        session.c2c_use_primary_from_now()


def _has_changes(session: Session) -> bool:
    """Say whether a flush would write (an object set to the value it had writes nothing)."""
    return bool(session.new or session.deleted) or any(
        session.is_modified(instance) for instance in session.dirty
    )


READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction


def _read_only_error(context: Any) -> BaseException | None:
    """During maintenance, turn the replica's read-only error into :class:`ReadOnlyMaintenanceError`.

    A write the routing cannot see (through ``session.connection()``, a function that writes)
    reaches the replica, which refuses it; the client gets the maintenance 503, not a 500.
    """
    if not MAINTENANCE.readonly:
        return None
    original = context.original_exception
    # psycopg 3 says sqlstate, psycopg2 pgcode.
    if getattr(original, "sqlstate", None) == READ_ONLY_SQLSTATE or (
        getattr(original, "pgcode", None) == READ_ONLY_SQLSTATE
    ):
        return ReadOnlyMaintenanceError()
    return None


def listen_read_only_errors(engine: Engine) -> None:
    """During maintenance, raise ``engine``'s read-only errors as the maintenance's (idempotent)."""
    if not event.contains(engine, "handle_error", _read_only_error):
        event.listen(engine, "handle_error", _read_only_error)


def connect_timeout_args(url: sqlalchemy.URL, timeout: float) -> dict[str, Any]:
    """Return the ``connect_args`` that bound the time to connect, unless the URL sets its own.

    libpq's ``connect_timeout`` (psycopg and psycopg2), in whole seconds (at least 2, as libpq
    takes no less); without it, a server that accepts TCP and never answers holds a connection
    attempt for minutes.
    """
    if url.get_backend_name() != "postgresql" or "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": max(2, math.ceil(timeout))}


class ReplicaFallback:
    """Lets the replica engine's pool connect to the primary while the replica cannot be reached.

    A connection to the replica that fails (or times out: the engines connect with a timeout)
    marks it down. While it is down, the pool connects to the primary at once, and a background
    thread, not a request, tries the replica every ``retry`` seconds; once it answers, the next
    checkout of each connection made to the primary discards it, so that a new one goes to the
    replica again.
    """

    def __init__(self, replica: Engine, primary: Engine, retry: float, connect_timeout: float) -> None:
        self.retry = retry
        primary_cargs, primary_cparams = primary.dialect.create_connect_args(primary.url)
        primary_cparams.update(connect_timeout_args(primary.url, connect_timeout))
        self.primary_args = (primary_cargs, primary_cparams)
        self.replica_url = replica.url.render_as_string(hide_password=True)
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.last_warning = 0.0
        self._prober: threading.Thread | None = None
        event.listen(replica, "do_connect", self.do_connect)
        event.listen(replica, "checkout", self.checkout)

    @property
    def down(self) -> bool:
        """Say whether the replica was found unreachable and has not answered since."""
        return self.down_since is not None

    def do_connect(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        """Connect to the replica, or to the primary when the replica does not answer."""
        if not self.down:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as error:
                self._mark_down(error, dialect, cargs, cparams)
            else:
                conn_rec.info.pop(FALLBACK, None)
                return connection
        conn_rec.info[FALLBACK] = True
        primary_cargs, primary_cparams = self.primary_args
        return dialect.connect(*primary_cargs, **primary_cparams)

    def checkout(self, dbapi_connection: Any, conn_rec: Any, proxy: Any) -> None:
        """Discard a connection to the primary once the replica answers again."""
        if conn_rec.info.get(FALLBACK) and not self.down:
            raise exc.DisconnectionError("the replica answers again")

    def _mark_down(self, error: Exception, dialect: Any, cargs: Any, cparams: Any) -> None:
        now = time.monotonic()
        with self.lock:
            first = self.down_since is None
            if first:
                self.down_since = now
            warn = first or now - self.last_warning >= WARNING_INTERVAL
            if warn:
                self.last_warning = now
            since = now - (self.down_since or now)
            # One prober per process (a forked worker does not inherit the parent's thread).
            if self._prober is None or not self._prober.is_alive():
                self._prober = threading.Thread(
                    target=self._probe_until_up,
                    args=(dialect, cargs, cparams),
                    name="c2cwsgiutils-replica-probe",
                    daemon=True,
                )
                self._prober.start()
        if warn:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            LOG.warning(
                "the replica %s does not answer (%s) since %.0f s: reads go to the primary, "
                "trying it again every %g s",
                self.replica_url,
                reason,
                since,
                self.retry,
            )

    def _probe_until_up(self, dialect: Any, cargs: Any, cparams: Any) -> None:
        """Try the replica every ``retry`` seconds, off the request path, until it answers."""
        while True:
            time.sleep(self.retry)
            try:
                dialect.connect(*cargs, **cparams).close()
            except Exception as error:  # whatever it is, the replica is not usable yet
                self._mark_down(error, dialect, cargs, cparams)
            else:
                self._mark_up()
                return

    def _mark_up(self) -> None:
        with self.lock:
            down_since, self.down_since = self.down_since, None
        if down_since is not None:
            LOG.warning(
                "the replica %s answers again after %.0f s: reads go to it",
                self.replica_url,
                time.monotonic() - down_since,
            )


def application_name(request_id: str) -> str:
    """Return what ``application_name`` holds for a request: its ID, cut to 63 bytes."""
    return request_id.encode("ascii", "replace")[:APPLICATION_NAME_BYTES].decode("ascii")


def _set_application_name(connection: sqlalchemy.Connection) -> None:
    """At the start of a transaction in a request, put the request ID in ``application_name``."""
    request_id = current_request_id.get()
    if request_id is None or connection.dialect.name != "postgresql":
        return
    # The DBAPI cursor: no SQLAlchemy event (timers, profiler) sees this statement. Bound as a
    # parameter, so no quoting is needed; local to the transaction, so it ends with it.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SELECT set_config('application_name', %s, true)", (application_name(request_id),))
    finally:
        cursor.close()


def listen_request_id() -> None:
    """Set ``application_name`` in every engine's transactions from now on (idempotent)."""
    if not event.contains(Engine, "begin", _set_application_name):
        event.listen(Engine, "begin", _set_application_name)


def stop_request_id() -> None:
    """Stop setting ``application_name`` (for tests)."""
    if event.contains(Engine, "begin", _set_application_name):
        event.remove(Engine, "begin", _set_application_name)
