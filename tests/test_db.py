"""c2cwsgiutils.db against the local PostgreSQL primary and its streaming replica.

The replica refuses writes ("read-only transaction") and answers ``pg_is_in_recovery()`` with
true: that is how these tests see which server a statement reached.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
import transaction
import webtest
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy import func, insert, select, text

from c2cwsgiutils.database import routing
from c2cwsgiutils.db import engine_of, setup_session, use_engine
from testing.fixtures import postgres_cluster, wait_for_postgres
from tests.apps.db_items import Item, create_table, in_recovery, primary_has, unique


@pytest.fixture(scope="module")
def table(postgres_url: str, postgres_replica_url: str) -> str:
    return create_table(postgres_url, postgres_replica_url)


class DbApp:
    """An in-process Pyramid app on setup_session, with views that say where they ran."""

    def __init__(
        self,
        primary_url: str,
        replica_url: str | None,
        *,
        settings: dict[str, Any] | None = None,
        **routing: Any,
    ) -> None:
        all_settings = {"sqlalchemy.url": primary_url, **(settings or {})}
        if replica_url is not None:
            all_settings["sqlalchemy_slave.url"] = replica_url
        config = Configurator(settings=all_settings)
        config.include("c2cwsgiutils.pyramid")
        self.session, self.primary, self.replica = setup_session(
            config, "sqlalchemy", "sqlalchemy_slave", **routing
        )
        self.views: dict[str, Callable[[Request], Any]] = {
            "where": self.where,
            "write": self.write,
            "add_then_read": self.add_then_read,
            "lock": self.lock,
            "tm_add": self.tm_add,
            "add_twice": self.add_twice,
            "fail_after_flush": self.fail_after_flush,
            "app_name": self.app_name,
            "sleep": self.sleep,
        }
        for name, view in self.views.items():
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name, renderer="json")
        self.app = webtest.TestApp(config.make_wsgi_app())

    def where(self, request: Request) -> dict[str, Any]:
        return {"in_recovery": in_recovery(self.session()), "engine": engine_of(self.session)}

    def write(self, request: Request) -> dict[str, Any]:
        """Write through the session's connection: no statement for the routing to look at."""
        session = self.session()
        session.connection().execute(insert(Item).values(value=request.params["value"]))
        # zope.sqlalchemy cannot see a write through the connection: say it, or it is rolled back.
        zope.sqlalchemy.mark_changed(session)
        return {"ok": True}

    def add_then_read(self, request: Request) -> dict[str, Any]:
        session = self.session()
        before = in_recovery(session)
        value = request.params["value"]
        session.add(Item(value=value))
        session.flush()
        found = session.scalar(select(func.count()).select_from(Item).where(Item.value == value))
        after = in_recovery(session)
        return {"before": before, "after": after, "found": found}

    def lock(self, request: Request) -> dict[str, Any]:
        session = self.session()
        session.execute(select(Item).limit(1).with_for_update()).all()
        return {"in_recovery": in_recovery(session)}

    def tm_add(self, request: Request) -> dict[str, Any]:
        self.session().add(Item(value=request.params["value"]))
        return {"ok": True}

    def add_twice(self, request: Request) -> dict[str, Any]:
        """Add a fresh value, then a value twice: the unique constraint breaks at commit time."""
        session = self.session()
        session.add(Item(value=request.params["fresh"]))
        session.add_all([Item(value=request.params["value"]), Item(value=request.params["value"])])
        return {"ok": True}

    def fail_after_flush(self, request: Request) -> dict[str, Any]:
        session = self.session()
        session.add(Item(value=request.params["value"]))
        session.flush()
        raise RuntimeError("failing after the flush")

    def app_name(self, request: Request) -> dict[str, Any]:
        return {"application_name": self.session().scalar(text("SELECT current_setting('application_name')"))}

    def sleep(self, request: Request) -> dict[str, Any]:
        self.session().execute(text("SELECT pg_sleep(:seconds)"), {"seconds": float(request.params["s"])})
        return {"ok": True}

    def close(self) -> None:
        self.session.remove()
        self.primary.dispose()
        self.replica.dispose()


@pytest.fixture
def make_app(table: str) -> Iterator[Callable[..., DbApp]]:
    apps: list[DbApp] = []

    def make(*args: Any, **kwargs: Any) -> DbApp:
        app = DbApp(*args, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    routing.stop_request_id()


@pytest.fixture
def db_app(make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str) -> DbApp:
    return make_app(postgres_url, postgres_replica_url, force_master=[r"GET /write/forced"])


# Routing by method and forced routes


def test_get_head_and_options_read_from_the_replica(db_app: DbApp) -> None:
    assert db_app.app.get("/where").json == {"in_recovery": True, "engine": "replica"}
    db_app.app.options("/where", status=200)
    assert db_app.app.get("/where").json["in_recovery"] is True


def test_post_put_delete_use_the_primary(db_app: DbApp) -> None:
    for method in ("post", "put", "delete", "patch"):
        assert getattr(db_app.app, method)("/where").json == {"in_recovery": False, "engine": "primary"}


def test_get_that_writes_fails_with_the_read_only_error(db_app: DbApp) -> None:
    response = db_app.app.get(f"/write?value={unique()}", status=500)
    assert response.json["status"] == 500


def test_read_only_error_is_postgresql_s(db_app: DbApp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        db_app.app.get(f"/write?value={unique()}", status=500)
    assert "cannot execute INSERT in a read-only transaction" in caplog.text


def test_force_master_sends_a_matching_get_to_the_primary(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    """The GET's write (through the connection, marked changed) is committed on the primary."""
    app = make_app(postgres_url, postgres_replica_url, force_master=[r"GET /wr.te"])
    value = unique()
    assert app.app.get(f"/write?value={value}").json == {"ok": True}
    assert primary_has(postgres_url, value)


def test_force_patterns_match_the_start_of_method_and_path_as_the_original(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    """The original used ``re.match``: ``"GET /wher"`` covers ``/where`` (and ``/where/x``)."""
    app = make_app(postgres_url, postgres_replica_url, force_master=[r"GET /wher"])
    assert app.app.get("/where").json["in_recovery"] is False


def test_force_pattern_ending_with_a_dollar_matches_one_path(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url, force_master=[r"GET /wher$"])
    assert app.app.get("/where").json["in_recovery"] is True


def test_force_slave_sends_a_matching_post_to_the_replica(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url, force_slave=[r"POST /where"])
    assert app.app.post("/where").json == {"in_recovery": True, "engine": "replica"}
    assert app.app.put("/where").json["in_recovery"] is False


def test_force_master_wins_over_force_slave(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url, force_slave=[r"GET /.*"], force_master=[r"GET /where"])
    assert app.app.get("/where").json["in_recovery"] is False


# Within a request


def test_read_after_write_in_a_get_goes_to_the_primary(db_app: DbApp, postgres_url: str) -> None:
    value = unique()
    assert db_app.app.get(f"/add_then_read?value={value}").json == {
        "before": True,
        "after": False,
        "found": 1,
    }
    assert primary_has(postgres_url, value)


def test_select_for_update_goes_to_the_primary(db_app: DbApp) -> None:
    assert db_app.app.get("/lock").json == {"in_recovery": False}


def test_next_request_reads_from_the_replica_again(db_app: DbApp) -> None:
    db_app.app.get(f"/add_then_read?value={unique()}")
    assert db_app.app.get("/where").json["in_recovery"] is True


def test_text_statements_are_routed_by_what_they_do() -> None:
    assert not routing.needs_primary(text("  /* c */ -- x\n select 1"))
    assert not routing.needs_primary(text("SHOW application_name"))
    assert routing.needs_primary(text("SELECT * FROM t FOR UPDATE"))
    assert routing.needs_primary(text("select 1 for no key update"))
    assert routing.needs_primary(text("UPDATE t SET a = 1"))
    assert routing.needs_primary(text("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"))
    assert routing.needs_primary(sqlalchemy.delete(Item))
    assert not routing.needs_primary(select(Item))


def test_session_is_removed_at_the_end_of_each_request(db_app: DbApp) -> None:
    db_app.app.get("/where")
    assert not db_app.session.registry.has()


# Transactions: pyramid_tm commits what a view wrote, as with the original


def test_a_post_s_write_is_committed_after_the_view(db_app: DbApp, postgres_url: str) -> None:
    value = unique()
    db_app.app.post(f"/tm_add?value={value}")
    assert primary_has(postgres_url, value)  # a new connection sees it


def test_a_unique_violation_found_at_commit_is_a_400_and_nothing_is_stored(
    db_app: DbApp, postgres_url: str
) -> None:
    fresh, value = unique(), unique()
    response = db_app.app.post(f"/add_twice?fresh={fresh}&value={value}", status=400)
    assert response.json["status"] == 400
    assert "duplicate key" in response.json["message"]
    assert not primary_has(postgres_url, fresh)
    assert not primary_has(postgres_url, value)


def test_an_exception_after_a_flush_stores_nothing(db_app: DbApp, postgres_url: str) -> None:
    value = unique()
    db_app.app.post(f"/fail_after_flush?value={value}", status=500)
    assert not primary_has(postgres_url, value)


# Engines


def test_without_a_replica_prefix_one_engine_does_everything(
    make_app: Callable[..., DbApp], postgres_url: str
) -> None:
    app = make_app(postgres_url, None)
    assert app.primary is app.replica
    assert app.app.get("/where").json == {"in_recovery": False, "engine": "primary"}


def test_same_url_for_the_replica_means_one_engine(make_app: Callable[..., DbApp], postgres_url: str) -> None:
    app = make_app(postgres_url, postgres_url)
    assert app.primary is app.replica


def test_psycopg2_urls_work(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    def psycopg2(url: str) -> str:
        return url.replace("postgresql://", "postgresql+psycopg2://", 1)

    app = make_app(psycopg2(postgres_url), psycopg2(postgres_replica_url))
    assert app.primary.dialect.driver == "psycopg2"
    assert app.app.get("/where").json["in_recovery"] is True
    assert app.app.post("/where").json["in_recovery"] is False
    value = unique()
    assert app.app.get(f"/add_then_read?value={value}").json["after"] is False


def test_engines_pre_ping_by_default(db_app: DbApp) -> None:
    assert db_app.primary.pool._pre_ping
    assert db_app.replica.pool._pre_ping


def test_pool_settings_are_read_from_the_prefixes(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(
        postgres_url,
        postgres_replica_url,
        settings={
            "sqlalchemy.pool_size": "3",
            "sqlalchemy_slave.pool_size": "4",
            "sqlalchemy.pool_recycle": "30",
        },
    )
    assert app.primary.pool.size() == 3  # type: ignore[attr-defined]
    assert app.replica.pool.size() == 4  # type: ignore[attr-defined]
    assert app.primary.pool._recycle == 30


# Outside requests


def test_outside_requests_the_primary_is_the_default(db_app: DbApp) -> None:
    session = db_app.session()
    assert in_recovery(session) is False
    db_app.session.remove()


def test_use_engine_picks_the_replica_outside_requests(db_app: DbApp) -> None:
    use_engine(db_app.session, db_app.replica)
    assert in_recovery(db_app.session()) is True
    use_engine(db_app.session, None)
    db_app.session.remove()
    assert in_recovery(db_app.session()) is False
    db_app.session.remove()


# pyramid_tm + zope.sqlalchemy


def test_the_transaction_manager_commits_and_the_next_get_reads_the_replica(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url)
    value = unique()
    app.app.post(f"/tm_add?value={value}")
    assert primary_has(postgres_url, value)
    assert app.app.get("/where").json["in_recovery"] is True
    assert not app.session.registry.has()


def test_a_get_that_adds_writes_on_the_primary(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url)
    value = unique()
    app.app.get(f"/tm_add?value={value}")
    assert primary_has(postgres_url, value)


def test_outside_requests_the_session_joins_the_thread_s_transaction(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url)
    value = unique()
    with transaction.manager:
        app.session().add(Item(value=value))
    assert primary_has(postgres_url, value)
    app.session.remove()


# SQL request IDs


@pytest.fixture
def id_app(make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str) -> DbApp:
    return make_app(
        postgres_url,
        postgres_replica_url,
        settings={
            "c2c.sql_request_id": "true",
            "sqlalchemy.pool_size": "1",
            "sqlalchemy_slave.pool_size": "1",
        },
    )


def test_application_name_is_the_request_id(id_app: DbApp) -> None:
    for _ in range(2):  # the same pooled connection: the second ID replaces the first
        request_id = unique()
        answer = id_app.app.get("/app_name", headers={"X-Request-ID": request_id}).json
        assert answer == {"application_name": request_id}
        answer = id_app.app.post("/app_name", headers={"X-Request-ID": request_id}).json
        assert answer == {"application_name": request_id}


def test_application_name_is_quoted_safely_and_cut_to_63_bytes(id_app: DbApp) -> None:
    request_id = 'it\'s "quoted"; SELECT 1; -- ' + "x" * 100
    answer = id_app.app.get("/app_name", headers={"X-Request-ID": request_id}).json
    assert answer == {"application_name": request_id[:63]}


def test_application_name_is_seen_in_pg_stat_activity_while_the_request_runs(
    id_app: DbApp, postgres_replica_url: str
) -> None:
    request_id = unique()
    thread = threading.Thread(
        target=lambda: id_app.app.get("/sleep?s=1.5", headers={"X-Request-ID": request_id})
    )
    thread.start()
    try:
        seen: list[tuple[str]] = []
        deadline = time.monotonic() + 5
        with psycopg.connect(postgres_replica_url, autocommit=True) as watcher:
            # The set_config() that names the connection may be what is seen first: wait for the sleep.
            while not any("pg_sleep" in query for (query,) in seen) and time.monotonic() < deadline:
                seen = watcher.execute(
                    "SELECT query FROM pg_stat_activity WHERE application_name = %s", (request_id,)
                ).fetchall()
                time.sleep(0.05)
    finally:
        thread.join()
    assert any("pg_sleep" in query for (query,) in seen), seen


def test_application_name_is_not_set_when_off(db_app: DbApp) -> None:
    request_id = unique()
    answer = db_app.app.get("/app_name", headers={"X-Request-ID": request_id}).json
    assert answer["application_name"] != request_id


# A replica that accepts TCP and never answers (a frozen server, a stuck pgbouncer)


@pytest.fixture
def tarpit_url() -> Iterator[str]:
    """A PostgreSQL URL whose server completes the TCP handshake (the kernel's backlog) and says nothing."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/test"


def test_a_replica_that_never_answers_delays_reads_by_at_most_the_connect_timeout(
    make_app: Callable[..., DbApp], postgres_url: str, tarpit_url: str
) -> None:
    app = make_app(
        postgres_url,
        tarpit_url,
        settings={"c2c.db_connect_timeout": "2s", "c2c.db_replica_retry": "200ms"},
    )
    started = time.monotonic()
    assert app.app.get("/where").json == {"in_recovery": False, "engine": "replica"}
    assert time.monotonic() - started < 2 + 1.5
    # The replica is tried again in a thread of its own, never in a request: none waits for it.
    for _ in range(8):
        started = time.monotonic()
        assert app.app.get("/where").json["in_recovery"] is False
        assert time.monotonic() - started < 0.5
        time.sleep(0.25)


def test_the_connect_timeout_of_the_url_wins(postgres_url: str) -> None:
    url = sqlalchemy.make_url(f"{postgres_url}?connect_timeout=30")
    assert routing.connect_timeout_args(url, 5) == {}
    assert routing.connect_timeout_args(sqlalchemy.make_url(postgres_url), 0.5) == {"connect_timeout": 2}
    assert routing.connect_timeout_args(sqlalchemy.make_url("sqlite://"), 5) == {}


# The replica going away, the primary restarting: these stop and start PostgreSQL clusters, so
# they run last in this module and always put the servers back.


def test_reads_fall_back_to_the_primary_while_the_replica_is_down(
    make_app: Callable[..., DbApp],
    postgres_url: str,
    postgres_replica_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(postgres_url, postgres_replica_url, settings={"c2c.db_replica_retry": "300ms"})
    assert app.app.get("/where").json["in_recovery"] is True  # a pooled replica connection
    caplog.set_level(logging.WARNING, "c2cwsgiutils.db")
    try:
        postgres_cluster("replica", "stop")
        for _ in range(3):
            assert app.app.get("/where").json["in_recovery"] is False
        warnings = [record for record in caplog.records if "does not answer" in record.getMessage()]
        assert len(warnings) == 1  # rate-limited
    finally:
        postgres_cluster("replica", "start")
        wait_for_postgres(postgres_replica_url)
    deadline = time.monotonic() + 10
    while app.app.get("/where").json["in_recovery"] is False:
        assert time.monotonic() < deadline, "reads did not return to the replica"
        time.sleep(0.1)
    assert "answers again" in caplog.text


def test_requests_succeed_after_the_primary_restarted(
    make_app: Callable[..., DbApp], postgres_url: str, postgres_replica_url: str
) -> None:
    app = make_app(postgres_url, postgres_replica_url)
    assert app.app.post("/where").json["in_recovery"] is False
    assert app.app.get("/where").json["in_recovery"] is True
    try:
        postgres_cluster("main", "restart")
    finally:
        wait_for_postgres(postgres_url)
    assert app.app.post("/where").json["in_recovery"] is False
    value = unique()
    assert app.app.get(f"/add_then_read?value={value}").json == {"before": True, "after": False, "found": 1}
