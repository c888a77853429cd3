"""request.dbsession: a session per request under pyramid_tm, routed as setup_session's.

Against the local primary (5432) and its streaming replica (5433), in process (WebTest).
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import transaction
import webtest
from pyramid import httpexceptions
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c2cwsgiutils import broadcast
from c2cwsgiutils.database.maintenance import MAINTENANCE
from c2cwsgiutils.db import ENGINES_KEY, engine_of, setup_request_session, setup_session
from c2cwsgiutils.health_check import HealthCheck
from tests.apps.db_items import Item, create_table, in_recovery, primary_has, unique


@pytest.fixture(scope="module")
def table(postgres_url: str, postgres_replica_url: str) -> str:
    return create_table(postgres_url, postgres_replica_url)


class RequestSessionApp:
    """An in-process app whose views use request.dbsession."""

    def __init__(self, primary_url: str, replica_url: str | None, **routing: Any) -> None:
        settings = {"sqlalchemy.url": primary_url}
        if replica_url is not None:
            settings["sqlalchemy_slave.url"] = replica_url
        config = Configurator(settings=settings)
        config.include("c2cwsgiutils.pyramid")
        self.factory, self.primary, self.replica = setup_request_session(
            config, "sqlalchemy", "sqlalchemy_slave", **routing
        )
        self.registry = config.registry
        self.sessions: list[Session] = []
        views: dict[str, Callable[[Request], Any]] = {
            "where": self.where,
            "forced": self.where,
            "add": self.add,
            "add_then_fail": self.add_then_fail,
            "add_then_crash": self.add_then_crash,
            "add_then_read": self.add_then_read,
            "unused": self.unused,
            "twice": self.twice,
        }
        for name, view in views.items():
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")
        self.app = webtest.TestApp(config.make_wsgi_app())

    def where(self, request: Request) -> dict[str, Any]:
        self.sessions.append(request.dbsession)
        return {"engine": engine_of(request.dbsession), "in_recovery": in_recovery(request.dbsession)}

    def add(self, request: Request) -> dict[str, Any]:
        self.sessions.append(request.dbsession)
        request.dbsession.add(Item(value=request.params["value"]))
        return {"ok": True}

    def add_then_fail(self, request: Request) -> dict[str, Any]:
        request.dbsession.add(Item(value=request.params["value"]))
        request.dbsession.flush()
        raise httpexceptions.HTTPBadRequest("changed my mind")

    def add_then_crash(self, request: Request) -> dict[str, Any]:
        request.dbsession.add(Item(value=request.params["value"]))
        request.dbsession.flush()
        raise RuntimeError("crash after the flush")

    def add_then_read(self, request: Request) -> dict[str, Any]:
        before = in_recovery(request.dbsession)
        value = request.params["value"]
        request.dbsession.add(Item(value=value))
        found = request.dbsession.scalar(select(func.count()).select_from(Item).where(Item.value == value))
        return {"before": before, "after": in_recovery(request.dbsession), "found": found}

    def unused(self, request: Request) -> dict[str, Any]:
        return {"made": "dbsession" in vars(request)}

    def twice(self, request: Request) -> dict[str, Any]:
        return {"same": request.dbsession is request.dbsession}

    def close(self) -> None:
        self.primary.dispose()
        self.replica.dispose()


@pytest.fixture
def make_app(table: str) -> Iterator[Callable[..., RequestSessionApp]]:
    broadcast.BROADCASTER.reset()
    MAINTENANCE.reset()
    apps: list[RequestSessionApp] = []

    def make(*args: Any, **kwargs: Any) -> RequestSessionApp:
        app = RequestSessionApp(*args, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    broadcast.BROADCASTER.reset()


@pytest.fixture
def app(
    make_app: Callable[..., RequestSessionApp], postgres_url: str, postgres_replica_url: str
) -> RequestSessionApp:
    return make_app(postgres_url, postgres_replica_url, force_master=[r"GET /forced"])


def test_commits_with_the_request_on_the_primary(app: RequestSessionApp, postgres_url: str) -> None:
    value = unique()
    assert app.app.post(f"/add?value={value}").json == {"ok": True}
    assert primary_has(postgres_url, value)


def test_rolled_back_when_the_view_raises_an_http_error(app: RequestSessionApp, postgres_url: str) -> None:
    value = unique()
    assert app.app.post(f"/add_then_fail?value={value}", status=400).json["message"] == "changed my mind"
    assert not primary_has(postgres_url, value)


def test_rolled_back_when_the_view_crashes(app: RequestSessionApp, postgres_url: str) -> None:
    value = unique()
    assert app.app.post(f"/add_then_crash?value={value}", status=500).json["status"] == 500
    assert not primary_has(postgres_url, value)


def test_get_reads_from_the_replica_and_post_from_the_primary(app: RequestSessionApp) -> None:
    assert app.app.get("/where").json == {"engine": "replica", "in_recovery": True}
    assert app.app.post("/where").json == {"engine": "primary", "in_recovery": False}


def test_forced_route_reads_from_the_primary(app: RequestSessionApp) -> None:
    assert app.app.get("/forced").json == {"engine": "primary", "in_recovery": False}


def test_a_get_that_writes_sticks_to_the_primary_and_commits(
    app: RequestSessionApp, postgres_url: str
) -> None:
    value = unique()
    assert app.app.get(f"/add_then_read?value={value}").json == {"before": True, "after": False, "found": 1}
    assert primary_has(postgres_url, value)
    assert app.app.get("/where").json["in_recovery"] is True


def test_not_made_when_the_view_does_not_use_it(app: RequestSessionApp) -> None:
    assert app.app.get("/unused").json == {"made": False}


def test_one_session_per_request(app: RequestSessionApp) -> None:
    assert app.app.get("/twice").json == {"same": True}
    app.app.get("/where")
    app.app.get("/where")
    first, second = app.sessions
    assert first is not second


def test_closed_after_the_request(app: RequestSessionApp) -> None:
    app.app.get("/where")
    app.app.post(f"/add?value={unique()}")
    assert all(not session.in_transaction() for session in app.sessions)
    assert app.primary.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert app.replica.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_without_a_replica_one_engine_does_everything(
    make_app: Callable[..., RequestSessionApp], postgres_url: str
) -> None:
    app = make_app(postgres_url, None)
    assert app.primary is app.replica
    assert app.app.get("/where").json == {"engine": "primary", "in_recovery": False}


def test_shares_the_engines_of_setup_session(
    postgres_url: str, postgres_replica_url: str, table: str
) -> None:
    config = Configurator(
        settings={"sqlalchemy.url": postgres_url, "sqlalchemy_slave.url": postgres_replica_url}
    )
    scoped, primary, replica = setup_session(config, "sqlalchemy", "sqlalchemy_slave")
    _, request_primary, request_replica = setup_request_session(config, "sqlalchemy", "sqlalchemy_slave")
    try:
        assert (request_primary, request_replica) == (primary, replica)
        assert config.registry[ENGINES_KEY] == {"sqlalchemy": primary, "sqlalchemy_slave": replica}
    finally:
        scoped.remove()
        primary.dispose()
        replica.dispose()
        broadcast.BROADCASTER.reset()


def test_outside_requests_its_sessions_join_the_thread_s_transaction_manager(
    app: RequestSessionApp, postgres_url: str
) -> None:
    value = unique()
    with transaction.manager:
        app.factory().add(Item(value=value))
    assert primary_has(postgres_url, value)


def test_health_check_of_the_request_session_checks_both_engines(
    postgres_url: str, postgres_replica_url: str, table: str
) -> None:
    config = Configurator(
        settings={"sqlalchemy.url": postgres_url, "sqlalchemy_slave.url": postgres_replica_url}
    )
    config.include("c2cwsgiutils.pyramid")
    factory, primary, replica = setup_request_session(config, "sqlalchemy", "sqlalchemy_slave")
    health_check = HealthCheck(config)
    health_check.add_db_session_check(factory, at_least_one_model=Item)
    app = webtest.TestApp(config.make_wsgi_app())
    try:
        body = app.get("/c2c/health_check").json
        assert body["successes"] == ["db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"], body
    finally:
        primary.dispose()
        replica.dispose()
        broadcast.BROADCASTER.reset()


@pytest.mark.parametrize("manager_hook", [None, "pyramid_tm.explicit_manager"])
@pytest.mark.parametrize("fail", [False, True])
def test_both_kinds_of_session_join_one_transaction_per_request(
    postgres_url: str, postgres_replica_url: str, table: str, manager_hook: str | None, fail: bool
) -> None:
    """Writes through setup_session's DBSession and request.dbsession commit or roll back together."""
    settings = {"sqlalchemy.url": postgres_url, "sqlalchemy_slave.url": postgres_replica_url}
    if manager_hook:
        settings["tm.manager_hook"] = manager_hook
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    scoped, primary, replica = setup_session(config, "sqlalchemy", "sqlalchemy_slave")
    setup_request_session(config, "sqlalchemy", "sqlalchemy_slave")

    def both(request: Request) -> dict[str, Any]:
        scoped().add(Item(value=request.params["old"]))
        request.dbsession.add(Item(value=request.params["new"]))
        request.dbsession.flush()
        if request.params.get("fail"):
            raise httpexceptions.HTTPConflict("both are rolled back")
        return {"ok": True}

    config.add_route("both", "/both")
    config.add_view(both, route_name="both", renderer="json", request_method="POST")
    app = webtest.TestApp(config.make_wsgi_app())
    old, new = unique(), unique()
    try:
        app.post(f"/both?old={old}&new={new}{'&fail=1' if fail else ''}", status=409 if fail else 200)
        assert (primary_has(postgres_url, old), primary_has(postgres_url, new)) == (not fail, not fail)
    finally:
        primary.dispose()
        replica.dispose()
        broadcast.BROADCASTER.reset()
