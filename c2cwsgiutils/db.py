"""Database sessions on a PostgreSQL primary and its read-only replica; SQL request IDs.

:func:`setup_session` makes a session that reads from the replica in ``GET``, ``HEAD`` and
``OPTIONS`` requests and uses the primary otherwise, with ``force_master`` / ``force_slave``
regular expressions on ``"METHOD /path"``; within a request, once something was written (flushed,
or an ``INSERT``/``UPDATE``/``DELETE`` or ``SELECT ... FOR UPDATE`` executed) everything goes to
the primary. A replica that cannot be reached sends reads to the primary until it answers again.

With ``C2C_SQL_REQUEST_ID`` on, PostgreSQL's ``application_name`` holds the request ID while a
request's transaction runs.
"""

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import EXCVIEW

from c2cwsgiutils import extras
from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, parse_positive_duration, setting
from c2cwsgiutils.include import first_time

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, scoped_session

_SCOPED_SESSIONS_KEY = "c2cwsgiutils.db.scoped_sessions"
ENGINES_KEY = "c2cwsgiutils.db.engines"
"""Registry key of the engines made by :func:`setup_session`, by settings prefix."""
TWEEN = "c2cwsgiutils.db.tween_factory"


@dataclasses.dataclass(frozen=True)
class DbSettings(SettingsGroup):
    """Database sessions and SQL request IDs."""

    TITLE = "Database"

    sql_request_id: bool = setting(
        "C2C_SQL_REQUEST_ID",
        "c2c.sql_request_id",
        False,
        "Put the request ID (its first 63 characters) in PostgreSQL's `application_name` while a "
        "request's transaction runs, for `log_line_prefix = '%a '`. Costs one round trip per transaction.",
        parse=parse_bool,
    )
    replica_retry: float = setting(
        "C2C_DB_REPLICA_RETRY",
        "c2c.db_replica_retry",
        10.0,
        "While the replica does not answer, reads go to the primary; this is how often a worker tries "
        "the replica again (a duration).",
        parse=parse_positive_duration,
        default_doc="`10s`",
    )


def _engine_options(settings: dict[str, Any], prefix: str) -> dict[str, Any]:
    options = {key: value for key, value in settings.items() if key.startswith(prefix)}
    # Stale pooled connections (a restarted server) are detected at checkout unless told otherwise.
    options.setdefault(prefix + "pool_pre_ping", "true")
    return options


def setup_session(
    config: Configurator,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Iterable[str] | None = None,
    force_slave: Iterable[str] | None = None,
) -> tuple["scoped_session[Session]", "Engine", "Engine"]:
    """Make a session on the primary (``master_prefix.*`` settings) and the replica (``slave_prefix.*``).

    Return ``(session factory, primary engine, replica engine)``; the factory is a
    ``scoped_session``, removed at the end of each request. Without a replica prefix, or with the
    same URL, both engines are the same one. ``force_master`` and ``force_slave`` are regular
    expressions matched on the whole ``"METHOD /path"`` of a request.
    """
    sqlalchemy = extras.require("sqlalchemy", "db", "c2cwsgiutils.db")
    from sqlalchemy.orm import scoped_session, sessionmaker  # noqa: PLC0415

    from c2cwsgiutils import _db_routing  # noqa: PLC0415

    config.include("c2cwsgiutils.db")
    db_settings = DbSettings.of(config)
    settings = config.get_settings()
    engines = config.registry.setdefault(ENGINES_KEY, {})

    primary: Engine = sqlalchemy.engine_from_config(
        _engine_options(settings, master_prefix + "."), prefix=master_prefix + "."
    )
    engines[master_prefix] = primary
    replica = primary
    slave_url = settings.get(f"{slave_prefix}.url") if slave_prefix else None
    if slave_prefix and slave_url and sqlalchemy.make_url(slave_url) != primary.url:
        replica = sqlalchemy.engine_from_config(
            _engine_options(settings, slave_prefix + "."), prefix=slave_prefix + "."
        )
        engines[slave_prefix] = replica
        if type(replica.dialect) is type(primary.dialect):
            _db_routing.ReplicaFallback(replica, primary, db_settings.replica_retry)
        else:
            _db_routing.LOG.warning(
                "%s and %s use different drivers: reads will not fall back to the primary "
                "when the replica is down",
                master_prefix,
                slave_prefix,
            )
    router = _db_routing.Router(primary, replica, force_master, force_slave)
    factory: scoped_session[Session] = scoped_session(
        sessionmaker(class_=_db_routing.RoutingSession, router=router)
    )
    scoped = config.registry.get(_SCOPED_SESSIONS_KEY)
    if scoped is None:
        scoped = config.registry[_SCOPED_SESSIONS_KEY] = []
        # Outside pyramid_tm (which commits, then zope.sqlalchemy closes the session) and EXCVIEW.
        config.add_tween(TWEEN, over=("pyramid_tm.tm_tween_factory", EXCVIEW))
    scoped.append(factory)
    return factory, primary, replica


def tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Remove the request's thread-local sessions once it is answered (what was not committed is lost)."""
    scoped = registry.get(_SCOPED_SESSIONS_KEY, [])

    def tween(request: Request) -> Response:
        try:
            return handler(request)
        finally:
            for factory in scoped:
                if factory.registry.has():
                    factory.remove()

    return tween


def use_engine(session: "Session | scoped_session[Session]", engine: "Engine | None") -> None:
    """Send everything the session does to ``engine`` (None: back to the automatic choice).

    For scripts and other code outside requests, where the primary is the default, and for the
    rare request that must choose by itself.
    """
    from sqlalchemy.orm import scoped_session  # noqa: PLC0415

    from c2cwsgiutils._db_routing import RoutingSession  # noqa: PLC0415

    target = session() if isinstance(session, scoped_session) else session
    if not isinstance(target, RoutingSession):
        raise TypeError("use_engine() needs a session made by c2cwsgiutils.db.setup_session")
    target.c2c_forced = engine


def engine_of(
    session: "Session | scoped_session[Session]", statement: Any = None
) -> Literal["primary", "replica"]:
    """Say which engine the session would use now for ``statement`` (or for a plain read)."""
    from sqlalchemy import select, text  # noqa: PLC0415
    from sqlalchemy.orm import scoped_session  # noqa: PLC0415

    from c2cwsgiutils._db_routing import RoutingSession  # noqa: PLC0415

    target = session() if isinstance(session, scoped_session) else session
    bind = target.get_bind(clause=select(text("1")) if statement is None else statement)
    if isinstance(target, RoutingSession) and bind is target.c2c_router.primary:
        return "primary"
    if isinstance(target, RoutingSession) and bind is target.c2c_router.replica:
        return "replica"
    return "primary"


def includeme(config: Configurator) -> None:
    """Switch on the SQL request IDs when ``C2C_SQL_REQUEST_ID`` is on (SQLAlchemy is needed only then)."""
    if not first_time(config, "db"):
        return
    if DbSettings.of(config).sql_request_id:
        extras.require("sqlalchemy", "db", "C2C_SQL_REQUEST_ID")
        from c2cwsgiutils import _db_routing  # noqa: PLC0415

        _db_routing.listen_request_id()
