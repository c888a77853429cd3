"""Database sessions on a PostgreSQL primary and its read-only replica; SQL request IDs.

:func:`setup_session` makes a session that reads from the replica in ``GET``, ``HEAD`` and
``OPTIONS`` requests and uses the primary otherwise, with ``force_master`` / ``force_slave``
regular expressions on ``"METHOD /path"``; within a request, once something was written (flushed,
or an ``INSERT``/``UPDATE``/``DELETE`` or ``SELECT ... FOR UPDATE`` executed) everything goes to
the primary. A replica that cannot be reached sends reads to the primary until it answers again.
:func:`create_session` is the same session made from URLs (upstream's later form).
:func:`setup_request_session` adds ``request.dbsession``, a session per request under
``pyramid_tm``, routed the same way. During read-only maintenance (:mod:`.database.maintenance`) every
session uses the replica and writes are refused.

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
from pyramid.threadlocal import get_current_request
from pyramid.tweens import EXCVIEW

from c2cwsgiutils import extras
from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, parse_positive_duration, setting
from c2cwsgiutils.database import maintenance
from c2cwsgiutils.include import first_time

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, scoped_session, sessionmaker

    from c2cwsgiutils.database.routing import Router

ReadOnlyMaintenanceError = maintenance.ReadOnlyMaintenanceError
"""What a write outside a request raises during read-only maintenance (the API's name for it)."""

_SCOPED_SESSIONS_KEY = "c2cwsgiutils.db.scoped_sessions"
ENGINES_KEY = "c2cwsgiutils.db.engines"
"""Registry key of the engines of :func:`setup_session` (by settings prefix) and :func:`create_session`."""
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
        "the replica again, in a thread of its own (a duration).",
        parse=parse_positive_duration,
        default_doc="`10s`",
    )
    connect_timeout: float = setting(
        "C2C_DB_CONNECT_TIMEOUT",
        "c2c.db_connect_timeout",
        5.0,
        "How long a connection to PostgreSQL may take before it fails (libpq's `connect_timeout`, "
        "whole seconds, at least 2), unless the URL sets `connect_timeout`: a replica that does not "
        "answer delays the requests that find it so by at most this, then reads go to the primary.",
        parse=parse_positive_duration,
        default_doc="`5s`",
    )


def _make_engine(settings: dict[str, Any], prefix: str, connect_timeout: float) -> "Engine":
    """Make the engine of the settings under ``prefix`` (``"sqlalchemy."``), with our defaults."""
    import sqlalchemy  # noqa: PLC0415

    from c2cwsgiutils.database import routing  # noqa: PLC0415

    options = {key: value for key, value in settings.items() if key.startswith(prefix)}
    # Stale pooled connections (a restarted server) are detected at checkout unless told otherwise.
    options.setdefault(prefix + "pool_pre_ping", "true")
    timeout = routing.connect_timeout_args(sqlalchemy.make_url(options[prefix + "url"]), connect_timeout)
    return sqlalchemy.engine_from_config(options, prefix=prefix, connect_args=timeout)


def setup_session(
    config: Configurator,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Iterable[str] | None = None,
    force_slave: Iterable[str] | None = None,
) -> tuple["scoped_session[Session]", "Engine", "Engine"]:
    """Make a session on the primary (``master_prefix.*`` settings) and the replica (``slave_prefix.*``).

    Return ``(session factory, primary engine, replica engine)``; the factory is a
    ``scoped_session`` joined to the transaction manager (``pyramid_tm`` commits after the view,
    ``transaction.manager`` outside requests), removed at the end of each request. Without a
    replica prefix, or with the same URL, both engines are the same one. ``force_master`` and
    ``force_slave`` are regular expressions matched at the start of ``"METHOD /path"``.
    """
    router = _make_router(config, master_prefix, slave_prefix, force_master, force_slave)
    return _scoped_session(config, router), router.primary, router.replica


def create_session(  # noqa: PLR0917 (upstream's signature)
    config: Configurator | None,
    name: str,
    url: str,
    slave_url: str | None = None,
    force_master: Iterable[str] | None = None,
    force_slave: Iterable[str] | None = None,
    **engine_config: Any,
) -> "scoped_session[Session]":
    """Make a session on ``url`` and its replica ``slave_url``: :func:`setup_session` from URLs.

    Upstream's later form, for a second database (c2cgeoportal's ``dbsessions``). The same
    session as :func:`setup_session`'s (routing, replica fallback, read-only maintenance, joined
    to the request's transaction), on engines made from the URLs with ``engine_config`` passed to
    ``sqlalchemy.create_engine`` (plus our defaults: ``pool_pre_ping``, a connect timeout).
    Without ``config`` (a script), or without a replica, everything goes to ``url``. The health
    checks name its engines ``name`` (one engine) or ``name_master`` and ``name_slave``.
    """
    extras.require("sqlalchemy", "db", "c2cwsgiutils.db.create_session")
    import sqlalchemy  # noqa: PLC0415

    from c2cwsgiutils.database import routing  # noqa: PLC0415

    if config is not None:
        config.include("c2cwsgiutils.db")
        config.include("c2cwsgiutils.database.maintenance")
    db_settings = DbSettings.of(config) if config is not None else DbSettings.resolve(None)

    def engine(target: str) -> "Engine":
        options = dict(engine_config)
        options.setdefault("pool_pre_ping", True)
        timeout = routing.connect_timeout_args(sqlalchemy.make_url(target), db_settings.connect_timeout)
        options["connect_args"] = {**timeout, **options.get("connect_args", {})}
        return sqlalchemy.create_engine(target, **options)

    primary = replica = engine(url)
    if config is not None and slave_url and sqlalchemy.make_url(slave_url) != primary.url:
        replica = engine(slave_url)
        names = {f"{name}_master": primary, f"{name}_slave": replica}
    else:
        names = {name: primary}
    if config is not None:
        engines: dict[str, Engine] = config.registry.setdefault(ENGINES_KEY, {})
        for engine_name, each in names.items():
            engines.setdefault(engine_name, each)
    router = _route(
        primary, replica, force_master, force_slave, db_settings, True, (f"{name} url", f"{name} slave_url")
    )
    return _scoped_session(config, router)


def _scoped_session(config: Configurator | None, router: "Router") -> "scoped_session[Session]":
    """Make the thread-local session of ``router``, joined to the transaction manager.

    With ``config``, it is removed at the end of each request (:func:`tween_factory`).
    """
    zope_sqlalchemy = extras.require("zope.sqlalchemy", "db", "c2cwsgiutils.db")
    from sqlalchemy.orm import scoped_session, sessionmaker  # noqa: PLC0415

    from c2cwsgiutils.database import routing  # noqa: PLC0415

    factory: scoped_session[Session] = scoped_session(
        sessionmaker(class_=routing.RoutingSession, router=router)
    )
    # As the original: the session joins the transaction manager, so that pyramid_tm commits what
    # a view wrote (or rolls it back when the view fails). Registered once, on the factory.
    zope_sqlalchemy.register(factory, transaction_manager=_RequestTransactionManager())
    # Upstream's attributes: the engines of writes and of reads.
    factory.c2c_rw_bind = router.primary  # type: ignore[attr-defined]
    factory.c2c_ro_bind = router.replica  # type: ignore[attr-defined]
    if config is not None:
        scoped = config.registry.get(_SCOPED_SESSIONS_KEY)
        if scoped is None:
            scoped = config.registry[_SCOPED_SESSIONS_KEY] = []
            # Outside pyramid_tm (which commits, then zope.sqlalchemy closes the session) and EXCVIEW.
            config.add_tween(TWEEN, over=("pyramid_tm.tm_tween_factory", EXCVIEW))
        scoped.append(factory)
    return factory


def setup_request_session(
    config: Configurator,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Iterable[str] | None = None,
    force_slave: Iterable[str] | None = None,
    *,
    name: str = "dbsession",
) -> tuple["sessionmaker[Session]", "Engine", "Engine"]:
    """Add ``request.dbsession`` (or ``request.<name>``): a session per request, joined to ``pyramid_tm``.

    The session is made the first time a request asks for it (a request that does not pays
    nothing more), joined to ``request.tm`` with ``zope.sqlalchemy``: it is committed when the
    view returns, rolled back when it raises or the response is an error, then closed. It is
    routed as :func:`setup_session`'s (same arguments, same rules, read-only maintenance
    included), and shares its engines when the prefixes are the same. Includes ``pyramid_tm``.

    Return ``(sessionmaker, primary engine, replica engine)``. Outside requests (scripts), the
    sessionmaker's sessions join the thread's ``transaction.manager``: ``with transaction.manager:``.
    """
    router = _make_router(config, master_prefix, slave_prefix, force_master, force_slave)
    return _add_request_session(config, router, name), router.primary, router.replica


def _add_request_session(config: Configurator, router: "Router", name: str) -> "sessionmaker[Session]":
    """Add ``request.<name>`` on ``router``; return its sessionmaker, joined to the request's transaction."""
    zope_sqlalchemy = extras.require("zope.sqlalchemy", "db", "request.dbsession")
    extras.require("pyramid_tm", "db", "request.dbsession")
    from sqlalchemy.orm import sessionmaker  # noqa: PLC0415

    from c2cwsgiutils.database import routing  # noqa: PLC0415

    factory: sessionmaker[Session] = sessionmaker(class_=routing.RoutingSession, router=router)
    # Registered once, on the sessionmaker: registering each session would cost SQLAlchemy's
    # per-instance event set-up in every request that uses it.
    zope_sqlalchemy.register(factory, transaction_manager=_RequestTransactionManager())
    config.include("pyramid_tm")

    def request_session(request: Request) -> "Session":
        session = factory()
        # zope.sqlalchemy closes a session that took part in a transaction; this one, in case
        # it was used outside pyramid_tm's (an excluded request, a tween above it).
        request.add_finished_callback(lambda request: session.close())
        return session

    # Reified: made on first use only. pyramid_tm's request.tm is reified too, so Pyramid already
    # builds the per-request class this needs: one more property adds next to nothing.
    config.add_request_method(request_session, name, reify=True)
    return factory


class _RequestTransactionManager:
    """The transaction manager of the request being served (pyramid_tm's ``request.tm``).

    Outside requests, the thread's ``transaction.manager``, zope.sqlalchemy's default.
    """

    def __getattr__(self, name: str) -> Any:
        import transaction  # noqa: PLC0415

        # A request of an app without pyramid_tm (two apps in one process) has no request.tm.
        manager = getattr(get_current_request(), "tm", None)
        if manager is None:
            manager = transaction.manager
        return getattr(manager, name)


def _make_router(
    config: Configurator,
    master_prefix: str,
    slave_prefix: str | None,
    force_master: Iterable[str] | None,
    force_slave: Iterable[str] | None,
) -> "Router":
    """Make the router of a session; the engines are made once per prefix, so sessions share them."""
    extras.require("sqlalchemy", "db", "c2cwsgiutils.db")
    import sqlalchemy  # noqa: PLC0415

    config.include("c2cwsgiutils.db")
    config.include("c2cwsgiutils.database.maintenance")
    settings = config.get_settings()
    db_settings = DbSettings.of(config)
    engines: dict[str, Engine] = config.registry.setdefault(ENGINES_KEY, {})
    made: list[str] = []

    def engine(prefix: str) -> "Engine":
        if prefix not in engines:
            engines[prefix] = _make_engine(settings, prefix + ".", db_settings.connect_timeout)
            made.append(prefix)
        return engines[prefix]

    primary = replica = engine(master_prefix)
    slave_url = settings.get(f"{slave_prefix}.url") if slave_prefix else None
    if slave_prefix and slave_url and sqlalchemy.make_url(slave_url) != primary.url:
        replica = engine(slave_prefix)
    # A replica made by an earlier session has its fallback already.
    new_replica = slave_prefix is not None and slave_prefix in made
    return _route(
        primary,
        replica,
        force_master,
        force_slave,
        db_settings,
        new_replica,
        (master_prefix, slave_prefix or ""),
    )


def _route(  # noqa: PLR0917 (the router's parts)
    primary: "Engine",
    replica: "Engine",
    force_master: Iterable[str] | None,
    force_slave: Iterable[str] | None,
    db_settings: DbSettings,
    new_replica: bool,
    names: tuple[str, str],
) -> "Router":
    """Make the router of two engines; a new replica gets its fallback to the primary."""
    from c2cwsgiutils.database import routing  # noqa: PLC0415

    if replica is not primary and new_replica:
        if type(replica.dialect) is type(primary.dialect):
            routing.ReplicaFallback(replica, primary, db_settings.replica_retry, db_settings.connect_timeout)
        else:
            routing.LOG.warning(
                "%s and %s use different drivers: reads will not fall back to the primary "
                "when the replica is down",
                *names,
            )
    for each in (primary, replica):
        routing.listen_read_only_errors(each)
    return routing.Router(primary, replica, force_master, force_slave)


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

    from c2cwsgiutils.database.routing import RoutingSession  # noqa: PLC0415

    target = session() if isinstance(session, scoped_session) else session
    if not isinstance(target, RoutingSession):
        raise TypeError("use_engine() needs a session made by c2cwsgiutils.db")
    target.c2c_forced = engine


def engine_of(
    session: "Session | scoped_session[Session]", statement: Any = None
) -> Literal["primary", "replica"]:
    """Say which engine the session would use now for ``statement`` (or for a plain read)."""
    from sqlalchemy import select, text  # noqa: PLC0415
    from sqlalchemy.orm import scoped_session  # noqa: PLC0415

    from c2cwsgiutils.database.routing import RoutingSession  # noqa: PLC0415

    target = session() if isinstance(session, scoped_session) else session
    bind = target.get_bind(clause=select(text("1")) if statement is None else statement)
    if isinstance(target, RoutingSession) and bind is target.c2c_router.primary:
        return "primary"
    if isinstance(target, RoutingSession) and bind is target.c2c_router.replica:
        return "replica"
    return "primary"


# The later upstream API (c2cwsgiutils 4 to 6): thin forms of the above.


def get_engine(settings: dict[str, Any], prefix: str = "sqlalchemy.") -> "Engine":
    """Make an engine from the settings under ``prefix``, with our defaults (pre-ping, connect timeout)."""
    extras.require("sqlalchemy", "db", "c2cwsgiutils.db.get_engine")
    return _make_engine(settings, prefix, DbSettings.resolve(settings).connect_timeout)


def get_session_factory(engine: "Engine") -> "sessionmaker[Session]":
    """Make a plain sessionmaker on ``engine``."""
    from sqlalchemy.orm import sessionmaker  # noqa: PLC0415

    return sessionmaker(bind=engine)


def get_tm_session(
    session_factory: "Callable[[], Session]", transaction_manager: Any, request: Request | None = None
) -> "Session":
    """Make a session of ``session_factory`` joined to ``transaction_manager``.

    In a script: ``with transaction.manager: get_tm_session(factory, transaction.manager).add(...)``.
    ``request`` is taken for upstream's ``get_tm_session_pyramid`` form; the routing reads the
    request being served by itself.
    """
    zope_sqlalchemy = extras.require("zope.sqlalchemy", "db", "c2cwsgiutils.db.get_tm_session")
    session = session_factory()
    zope_sqlalchemy.register(session, transaction_manager=transaction_manager)
    return session


get_tm_session_pyramid = get_tm_session


def init(
    config: Configurator,
    master_prefix: str,
    slave_prefix: str | None = None,
    force_master: Iterable[str] | None = None,
    force_slave: Iterable[str] | None = None,
) -> "sessionmaker[Session]":
    """Add ``request.dbsession``, as :func:`setup_request_session` does; return a session factory.

    Upstream's later form. The factory is the same routing sessionmaker, not joined to any
    transaction manager, for scripts: :func:`get_tm_session` joins its sessions to one. It is also
    ``config.registry["dbsession_factory"]``. pyramid_tm runs in explicit mode (upstream's
    ``tm.manager_hook``) unless the settings name another manager.
    """
    from sqlalchemy.orm import sessionmaker  # noqa: PLC0415

    from c2cwsgiutils.database import routing  # noqa: PLC0415

    config.get_settings().setdefault("tm.manager_hook", "pyramid_tm.explicit_manager")
    router = _make_router(config, master_prefix, slave_prefix, force_master, force_slave)
    _add_request_session(config, router, "dbsession")
    factory: sessionmaker[Session] = sessionmaker(class_=routing.RoutingSession, router=router)
    config.registry["dbsession_factory"] = factory
    return factory


def includeme(config: Configurator) -> None:
    """Include ``pyramid_tm`` when the ``db`` extra is installed; switch on the SQL request IDs.

    The original's include brought ``pyramid_tm`` in, and its apps rely on it to commit what
    their views write. SQLAlchemy itself is imported only for ``C2C_SQL_REQUEST_ID``.
    """
    if not first_time(config, "db"):
        return
    if extras.installed("sqlalchemy", "pyramid_tm"):
        config.include("pyramid_tm")
    if DbSettings.of(config).sql_request_id:
        extras.require("sqlalchemy", "db", "C2C_SQL_REQUEST_ID")
        from c2cwsgiutils.database import routing  # noqa: PLC0415

        routing.listen_request_id()
