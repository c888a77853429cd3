"""c2cwsgiutils.db.create_session (upstream's later form) on the local PostgreSQL primary and replica.

The replica answers ``pg_is_in_recovery()`` with true and refuses writes: that is how these
tests see which server a statement reached. The session is made the way c2cgeoportal makes its
``dbsessions`` (``create_session(config, name, **dbsession_config)``).
"""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
import transaction
import webtest
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy.orm import Session, scoped_session

from c2cwsgiutils.db import ENGINES_KEY, create_session, engine_of
from c2cwsgiutils.health_check import HealthCheck
from tests.apps.db_items import Item, create_table, in_recovery, primary_has, unique


@pytest.fixture(scope="module")
def table(postgres_url: str, postgres_replica_url: str) -> str:
    return create_table(postgres_url, postgres_replica_url)


class App:
    """An in-process app whose views use a ``create_session`` session."""

    def __init__(self, config: Configurator, session: "scoped_session[Session]") -> None:
        self.session = session

        def where(request: Request) -> dict[str, Any]:
            return {"in_recovery": in_recovery(session()), "engine": engine_of(session)}

        def add(request: Request) -> dict[str, Any]:
            session().add(Item(value=request.params["value"]))
            return {"in_recovery": in_recovery(session())}

        def add_then_fail(request: Request) -> dict[str, Any]:
            session().add(Item(value=request.params["value"]))
            session().flush()
            raise RuntimeError("failing after the flush")

        for name, view in {"where": where, "add": add, "add_then_fail": add_then_fail}.items():
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")
        self.app = webtest.TestApp(config.make_wsgi_app())


@pytest.fixture
def sessions(table: str) -> Iterator[list["scoped_session[Session]"]]:
    made: list[scoped_session[Session]] = []
    yield made
    for session in made:
        session.remove()
        session.c2c_rw_bind.dispose()  # type: ignore[attr-defined]
        session.c2c_ro_bind.dispose()  # type: ignore[attr-defined]


def make_app(
    sessions: list["scoped_session[Session]"], url: str, slave_url: str | None, **kwargs: Any
) -> tuple[App, Configurator]:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    dbsession_config: dict[str, Any] = {"url": url, **kwargs}
    if slave_url is not None:
        dbsession_config["slave_url"] = slave_url
    session = create_session(config, "other", **dbsession_config)
    sessions.append(session)
    return App(config, session), config


def test_a_get_reads_from_the_replica(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url)
    assert app.app.get("/where").json == {"in_recovery": True, "engine": "replica"}


def test_a_post_writes_on_the_primary_and_commits_with_the_request(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url)
    value = unique()
    assert app.app.post("/add", {"value": value}).json == {"in_recovery": False}
    assert primary_has(postgres_url, value)


def test_a_failing_request_rolls_its_write_back(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url)
    value = unique()
    app.app.post("/add_then_fail", {"value": value}, status=500)
    assert not primary_has(postgres_url, value)


def test_force_master_sends_a_matching_get_to_the_primary(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url, force_master=["GET /where"])
    assert app.app.get("/where").json == {"in_recovery": False, "engine": "primary"}


def test_force_slave_sends_a_matching_post_to_the_replica(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url, force_slave=["POST /where"])
    assert app.app.post("/where").json == {"in_recovery": True, "engine": "replica"}


def test_engine_config_reaches_create_engine(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_replica_url, pool_size=3, pool_pre_ping=False)
    primary = app.session.c2c_rw_bind  # type: ignore[attr-defined]
    assert primary.pool.size() == 3
    assert primary.pool._pre_ping is False


def test_without_a_replica_everything_goes_to_the_url(
    sessions: list["scoped_session[Session]"], postgres_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, None)
    assert app.app.get("/where").json == {"in_recovery": False, "engine": "primary"}
    assert app.session.c2c_rw_bind is app.session.c2c_ro_bind  # type: ignore[attr-defined]


def test_without_config_a_script_uses_the_primary_in_the_thread_s_transaction(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    session = create_session(None, "script", postgres_url, postgres_replica_url)
    sessions.append(session)
    value = unique()
    with transaction.manager:
        assert not in_recovery(session())
        session().add(Item(value=value))
    assert primary_has(postgres_url, value)


def test_the_health_checks_name_the_engines_as_upstream(
    sessions: list["scoped_session[Session]"], postgres_url: str, postgres_replica_url: str
) -> None:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    session = create_session(config, "other", postgres_url, postgres_replica_url)
    sessions.append(session)
    assert set(config.registry[ENGINES_KEY]) >= {"other_master", "other_slave"}
    check = HealthCheck(config)
    check.add_db_session_check(session, at_least_one_model=None)
    app = webtest.TestApp(config.make_wsgi_app())
    report = app.get("/c2c/health_check").json
    assert report["status"] == 200
    assert {"db_engine_other_master", "db_engine_other_slave"} <= set(report["successes"])


def test_a_replica_url_equal_to_the_url_makes_one_engine(
    sessions: list["scoped_session[Session]"], postgres_url: str
) -> None:
    app, _ = make_app(sessions, postgres_url, postgres_url)
    assert app.session.c2c_rw_bind is app.session.c2c_ro_bind  # type: ignore[attr-defined]
    assert sqlalchemy.make_url(postgres_url) == app.session.c2c_rw_bind.url  # type: ignore[attr-defined]
