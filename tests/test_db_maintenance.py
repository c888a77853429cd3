"""Read-only maintenance in process: the switch, the routing, the 503, the health check.

Against the local primary (5432) and its streaming replica (5433): a write that reached the
replica would fail with PostgreSQL's read-only error, which is what proves where it went.
"""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webtest
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy import insert, text

from c2cwsgiutils import broadcast
from c2cwsgiutils.database.maintenance import MAINTENANCE
from c2cwsgiutils.db import (
    ReadOnlyMaintenanceError,  # the README's name for it
    engine_of,
    setup_request_session,
    setup_session,
    use_engine,
)
from c2cwsgiutils.health_check import HealthCheck
from testing.fixtures import RedisServer, postgres_cluster, wait_for_postgres
from tests.apps.db_items import Item, create_table, in_recovery, primary_has, unique

SECRET = "maintenance-secret"  # noqa: S105


@pytest.fixture(scope="module")
def table(postgres_url: str, postgres_replica_url: str) -> str:
    return create_table(postgres_url, postgres_replica_url)


class MaintenanceApp:
    """An in-process app with both kinds of session, the maintenance view and a health check."""

    def __init__(self, primary_url: str, replica_url: str | None, settings: dict[str, Any]) -> None:
        all_settings = {"sqlalchemy.url": primary_url, **settings}
        if replica_url is not None:
            all_settings["sqlalchemy_slave.url"] = replica_url
        config = Configurator(settings=all_settings)
        config.include("c2cwsgiutils.pyramid")
        self.session, self.primary, self.replica = setup_session(
            config, "sqlalchemy", "sqlalchemy_slave", force_master=[r"GET /forced"]
        )
        setup_request_session(config, "sqlalchemy", "sqlalchemy_slave")
        health_check = HealthCheck(config)
        health_check.add_db_session_check(self.session)
        views: dict[str, Callable[[Request], Any]] = {
            "where": self.where,
            "forced": self.where,
            "add": self.add,
            "add_text": self.add_text,
            "write_raw": self.write_raw,
            "tm_add": self.tm_add,
            "tm_where": self.tm_where,
        }
        for name, view in views.items():
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")
        self.app = webtest.TestApp(config.make_wsgi_app())

    def where(self, request: Request) -> dict[str, Any]:
        session = self.session()
        return {"engine": engine_of(session), "in_recovery": in_recovery(session)}

    def add(self, request: Request) -> dict[str, Any]:
        session = self.session()
        session.add(Item(value=request.params["value"]))
        session.flush()
        return {"ok": True}

    def add_text(self, request: Request) -> dict[str, Any]:
        session = self.session()
        statement = text("INSERT INTO c2c_db_test_item (value) VALUES (:value)")
        session.execute(statement, {"value": request.params["value"]})
        zope.sqlalchemy.mark_changed(session)
        return {"ok": True}

    def write_raw(self, request: Request) -> dict[str, Any]:
        """Write through the session's connection: no statement for the routing to look at."""
        session = self.session()
        session.connection().execute(insert(Item).values(value=request.params["value"]))
        zope.sqlalchemy.mark_changed(session)
        return {"ok": True}

    def tm_add(self, request: Request) -> dict[str, Any]:
        # Flushed at commit, by pyramid_tm, after the view returned.
        request.dbsession.add(Item(value=request.params["value"]))
        return {"ok": True}

    def tm_where(self, request: Request) -> dict[str, Any]:
        return {"in_recovery": in_recovery(request.dbsession)}

    def switch(self, readonly: bool) -> dict[str, Any]:
        response: dict[str, Any] = self.app.get(
            f"/c2c/db/maintenance?readonly={str(readonly).lower()}", headers={"X-API-Key": SECRET}
        ).json
        return response

    def close(self) -> None:
        self.session.remove()
        self.primary.dispose()
        self.replica.dispose()


@pytest.fixture
def make_app(table: str) -> Iterator[Callable[..., MaintenanceApp]]:
    broadcast.BROADCASTER.reset()
    MAINTENANCE.reset()
    apps: list[MaintenanceApp] = []

    def make(
        primary_url: str, replica_url: str | None, settings: dict[str, Any] | None = None
    ) -> MaintenanceApp:
        app = MaintenanceApp(
            primary_url, replica_url, {"c2c.db_maintenance_secret": SECRET, **(settings or {})}
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    MAINTENANCE.reset()
    broadcast.BROADCASTER.reset()


@pytest.fixture
def app(
    make_app: Callable[..., MaintenanceApp], postgres_url: str, postgres_replica_url: str
) -> MaintenanceApp:
    return make_app(postgres_url, postgres_replica_url)


# The switch


def test_view_is_off_without_its_secret(
    make_app: Callable[..., MaintenanceApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url, {"c2c.db_maintenance_secret": ""})
    app.app.get("/c2c/db/maintenance", status=404)


def test_view_wants_the_secret(app: MaintenanceApp) -> None:
    assert app.app.get("/c2c/db/maintenance?readonly=true", status=403).json["status"] == 403
    assert app.app.get("/c2c/db/maintenance?readonly=true&secret=wrong", status=403)
    assert MAINTENANCE.readonly is False


def test_view_reports_the_state_without_a_parameter(app: MaintenanceApp) -> None:
    response = app.app.get(f"/c2c/db/maintenance?secret={SECRET}")
    assert response.json == {"status": 200, "readonly": False, "since": None}
    assert response.headers["Cache-Control"] == "no-store"


def test_switch_on_and_off(app: MaintenanceApp) -> None:
    on = app.switch(True)
    assert on["readonly"] is True
    assert on["since"].endswith("+00:00")
    assert app.app.get(f"/c2c/db/maintenance?secret={SECRET}").json["readonly"] is True
    assert app.switch(False) == {"status": 200, "readonly": False, "since": None}


def test_switch_is_stored_for_workers_started_later(app: MaintenanceApp) -> None:
    app.switch(True)
    assert broadcast.stored("c2c_db_maintenance")["readonly"]["readonly"] is True


def test_bad_value_is_a_400(app: MaintenanceApp) -> None:
    response = app.app.get(f"/c2c/db/maintenance?readonly=maybe&secret={SECRET}", status=400)
    assert "readonly='maybe'" in response.json["message"]
    assert MAINTENANCE.readonly is False


def test_view_is_listed_in_the_index(app: MaintenanceApp) -> None:
    assert app.app.get("/c2c/").json["views"]["db_maintenance"] == "/c2c/db/maintenance"


# Routing during maintenance


def test_reads_go_to_the_replica_even_in_a_post_and_a_forced_route(app: MaintenanceApp) -> None:
    app.switch(True)
    assert app.app.post("/where").json == {"engine": "replica", "in_recovery": True}
    assert app.app.get("/forced").json == {"engine": "replica", "in_recovery": True}
    assert app.app.post("/tm_where").json == {"in_recovery": True}
    app.switch(False)
    assert app.app.post("/tm_where").json == {"in_recovery": False}
    assert app.app.post("/where").json == {"engine": "primary", "in_recovery": False}
    assert app.app.get("/forced").json["in_recovery"] is False


def test_use_engine_cannot_send_to_the_primary_during_maintenance(app: MaintenanceApp) -> None:
    app.switch(True)
    use_engine(app.session, app.primary)
    assert engine_of(app.session) == "replica"
    app.session.remove()


def assert_refused(response: webtest.TestResponse) -> None:
    assert response.status_int == 503
    assert response.headers["Retry-After"] == "60"
    assert response.json["status"] == 503
    assert "read-only maintenance" in response.json["message"]


def test_orm_write_is_a_503_with_retry_after(app: MaintenanceApp, postgres_url: str) -> None:
    app.switch(True)
    value = unique()
    assert_refused(app.app.post(f"/add?value={value}", status=503))
    assert not primary_has(postgres_url, value)


def test_text_write_is_a_503(app: MaintenanceApp) -> None:
    app.switch(True)
    assert_refused(app.app.post(f"/add_text?value={unique()}", status=503))


def test_write_the_routing_cannot_see_is_a_503_not_postgresql_s_500(app: MaintenanceApp) -> None:
    app.switch(True)
    assert_refused(app.app.post(f"/write_raw?value={unique()}", status=503))


def test_replica_s_read_only_error_is_a_503_with_psycopg2_too(
    make_app: Callable[..., MaintenanceApp], postgres_url: str, postgres_replica_url: str
) -> None:
    def psycopg2(url: str) -> str:
        return url.replace("postgresql://", "postgresql+psycopg2://", 1)

    app = make_app(psycopg2(postgres_url), psycopg2(postgres_replica_url))
    app.switch(True)
    assert_refused(app.app.post(f"/write_raw?value={unique()}", status=503))


def test_write_flushed_by_pyramid_tm_at_commit_is_a_503(app: MaintenanceApp, postgres_url: str) -> None:
    app.switch(True)
    value = unique()
    assert_refused(app.app.post(f"/tm_add?value={value}", status=503))
    assert not primary_has(postgres_url, value)


def test_writes_succeed_again_after_the_switch_back(app: MaintenanceApp, postgres_url: str) -> None:
    app.switch(True)
    app.app.post(f"/add?value={unique()}", status=503)
    app.switch(False)
    values = [unique() for _ in range(3)]
    app.app.post(f"/add?value={values[0]}")
    app.app.post(f"/write_raw?value={values[1]}")
    app.app.post(f"/tm_add?value={values[2]}")
    assert all(primary_has(postgres_url, value) for value in values)


def test_retry_after_is_a_setting(
    make_app: Callable[..., MaintenanceApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url, {"c2c.db_maintenance_retry_after": "2m"})
    app.switch(True)
    assert app.app.post(f"/add?value={unique()}", status=503).headers["Retry-After"] == "120"


def test_read_only_error_outside_maintenance_stays_a_500(app: MaintenanceApp) -> None:
    """A GET that writes goes to the replica: a bug of the app, not maintenance."""
    assert app.app.get(f"/write_raw?value={unique()}", status=500).json["status"] == 500


def test_without_a_replica_reads_use_the_primary_and_writes_are_refused(
    make_app: Callable[..., MaintenanceApp], postgres_url: str
) -> None:
    app = make_app(postgres_url, None)
    app.switch(True)
    assert app.app.post("/where").json["in_recovery"] is False
    assert_refused(app.app.post(f"/add?value={unique()}", status=503))
    assert_refused(app.app.post(f"/tm_add?value={unique()}", status=503))


def test_outside_requests_maintenance_refuses_writes_too(app: MaintenanceApp) -> None:
    app.switch(True)
    session = app.session()
    session.add(Item(value=unique()))
    with pytest.raises(ReadOnlyMaintenanceError):
        session.flush()
    session.rollback()
    app.session.remove()


def test_text_write_outside_requests_is_refused(app: MaintenanceApp) -> None:
    app.switch(True)
    session = app.session()
    with pytest.raises(ReadOnlyMaintenanceError):
        session.execute(text("DELETE FROM c2c_db_test_item WHERE value = 'none'"))
    app.session.remove()


# The health check


def test_health_check_reports_maintenance_and_skips_the_primary(app: MaintenanceApp) -> None:
    assert "maintenance" not in app.app.get("/c2c/health_check").json
    app.switch(True)
    body = app.app.get("/c2c/health_check").json
    assert body["status"] == 200
    assert body["maintenance"]["readonly"] is True
    assert body["successes"] == ["db_engine_sqlalchemy_slave"]
    assert body["skipped"] == {"db_engine_sqlalchemy": "read-only database maintenance"}
    app.switch(False)
    body = app.app.get("/c2c/health_check").json
    assert body["successes"] == ["db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"]


# The point of it all: the primary stopped


def test_with_the_primary_stopped_reads_work_and_writes_are_503(
    app: MaintenanceApp, postgres_url: str, postgres_replica_url: str
) -> None:
    """Stops the shared local primary for a few seconds, as an upgrade would."""
    value = unique()
    app.app.post(f"/add?value={value}")  # pooled connections to the primary, soon dead
    app.switch(True)
    try:
        postgres_cluster("main", "stop")
        assert app.app.post("/where").json == {"engine": "replica", "in_recovery": True}
        assert app.app.get("/tm_where").json == {"in_recovery": True}
        assert_refused(app.app.post(f"/add?value={unique()}", status=503))
        assert_refused(app.app.post(f"/tm_add?value={unique()}", status=503))
        assert_refused(app.app.post(f"/write_raw?value={unique()}", status=503))
        health = app.app.get("/c2c/health_check").json
        assert (health["status"], health["failures"]) == (200, {}), health
    finally:
        postgres_cluster("main", "start")
        wait_for_postgres(postgres_url)
    app.switch(False)
    # The pool's dead connections are replaced at checkout (pre-ping): no restart needed.
    value = unique()
    app.app.post(f"/add?value={value}")
    assert primary_has(postgres_url, value)


def test_a_switch_while_redis_is_paused_is_applied_here_and_queued_202(
    make_app: Callable[..., MaintenanceApp],
    postgres_url: str,
    postgres_replica_url: str,
    redis_server: RedisServer,
) -> None:
    settings = {"c2c.redis_url": redis_server.url, "c2c.broadcast_prefix": f"test_{uuid.uuid4().hex}"}
    app = make_app(postgres_url, postgres_replica_url, settings)
    with redis_server.paused():
        answer = app.app.get(
            "/c2c/db/maintenance?readonly=true", headers={"X-API-Key": SECRET}, status=202
        ).json
    assert (answer["readonly"], "queued" in answer["message"]) == (True, True)
    assert app.switch(False)["readonly"] is False
