"""The transaction manager as the original's apps rely on it, and upstream's later database forms.

Against the local primary (5432) and its streaming replica (5433), in process (WebTest).
"""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
import transaction
import webtest
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy.orm import scoped_session, sessionmaker

from c2cwsgiutils import broadcast, db
from tests.apps.db_items import Item, create_table, in_recovery, primary_has, unique


@pytest.fixture(scope="module")
def table(postgres_url: str, postgres_replica_url: str) -> str:
    return create_table(postgres_url, postgres_replica_url)


@pytest.fixture
def settings(postgres_url: str, postgres_replica_url: str, table: str) -> Iterator[dict[str, Any]]:
    yield {"sqlalchemy.url": postgres_url, "sqlalchemy_slave.url": postgres_replica_url}
    broadcast.BROADCASTER.reset()


def _add_view(config: Configurator, name: str, view: Any, **predicates: Any) -> None:
    config.add_route(name, f"/{name}")
    config.add_view(view, route_name=name, renderer="json", **predicates)


def test_the_include_brings_pyramid_tm_for_the_app_s_own_sessions(
    settings: dict[str, Any], postgres_url: str
) -> None:
    """An original app's own zope-registered session is committed by the pyramid_tm of the include."""
    engine = sqlalchemy.create_engine(postgres_url)
    session = scoped_session(sessionmaker(bind=engine))
    zope.sqlalchemy.register(session)
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")

    def add(request: Request) -> dict[str, Any]:
        session().add(Item(value=request.params["value"]))
        return {"ok": True}

    _add_view(config, "add", add)
    value = unique()
    try:
        webtest.TestApp(config.make_wsgi_app()).post(f"/add?value={value}")
        assert primary_has(postgres_url, value)
    finally:
        session.remove()
        engine.dispose()


def test_including_pyramid_tm_as_well_is_harmless(settings: dict[str, Any], postgres_url: str) -> None:
    config = Configurator(settings=settings)
    config.include("pyramid_tm")
    config.include("c2cwsgiutils.pyramid")
    scoped, primary, replica = db.setup_session(config, "sqlalchemy", "sqlalchemy_slave")

    def add(request: Request) -> dict[str, Any]:
        scoped().add(Item(value=request.params["value"]))
        return {"ok": True}

    _add_view(config, "add", add)
    value = unique()
    try:
        webtest.TestApp(config.make_wsgi_app()).post(f"/add?value={value}")
        assert primary_has(postgres_url, value)
    finally:
        primary.dispose()
        replica.dispose()


def test_init_adds_a_routed_request_dbsession_committed_with_the_request(
    settings: dict[str, Any], postgres_url: str
) -> None:
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    factory = db.init(config, "sqlalchemy", "sqlalchemy_slave", force_master=["GET /forced"])

    def add(request: Request) -> dict[str, Any]:
        request.dbsession.add(Item(value=request.params["value"]))
        return {"in_recovery": in_recovery(request.dbsession)}

    def where(request: Request) -> dict[str, Any]:
        return {"in_recovery": in_recovery(request.dbsession)}

    _add_view(config, "add", add)
    _add_view(config, "where", where)
    _add_view(config, "forced", where)
    app = webtest.TestApp(config.make_wsgi_app())
    value = unique()
    try:
        assert config.registry["dbsession_factory"] is factory
        assert app.post(f"/add?value={value}").json == {"in_recovery": False}
        assert primary_has(postgres_url, value)
        assert app.get("/where").json == {"in_recovery": True}
        assert app.get("/forced").json == {"in_recovery": False}
    finally:
        factory.kw["router"].primary.dispose()
        factory.kw["router"].replica.dispose()


@pytest.mark.parametrize("explicit", [False, True])
def test_get_tm_session_joins_the_given_transaction_manager(
    settings: dict[str, Any], postgres_url: str, explicit: bool
) -> None:
    config = Configurator(settings=settings)
    factory = db.init(config, "sqlalchemy", "sqlalchemy_slave")
    manager = transaction.TransactionManager(explicit=True) if explicit else transaction.manager
    kept, dropped = unique(), unique()
    try:
        with manager:
            db.get_tm_session(factory, manager).add(Item(value=kept))

        def add_then_fail() -> None:
            with manager:
                db.get_tm_session(factory, manager).add(Item(value=dropped))
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            add_then_fail()
        assert primary_has(postgres_url, kept)
        assert not primary_has(postgres_url, dropped)
    finally:
        factory.kw["router"].primary.dispose()
        factory.kw["router"].replica.dispose()


def test_get_engine_and_get_session_factory(postgres_url: str, table: str) -> None:
    engine = db.get_engine({"sqlalchemy.url": postgres_url, "sqlalchemy.pool_size": "2"})
    value = unique()
    try:
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
        with transaction.manager:
            db.get_tm_session(db.get_session_factory(engine), transaction.manager).add(Item(value=value))
        assert primary_has(postgres_url, value)
    finally:
        engine.dispose()
