"""The SQL profiler in-process, on the local PostgreSQL (the broadcast reaches this process only here)."""

import contextlib
import logging
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy
import webtest
from pyramid.request import Request
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from c2cwsgiutils import broadcast, sql_profiler
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import RedisServer
from tests.apps import make_app

HEADERS = {"X-API-Key": "pr0f"}
LOGGER = "c2cwsgiutils.sql_profiler"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, engine: sqlalchemy.Engine) -> Iterator[webtest.TestApp]:
    for name in ("SQL_PROFILER_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    sql_profiler.PROFILER.reset()

    def query(request: Request) -> dict[str, object]:
        with engine.begin() as connection:
            value = connection.execute(
                text(request.params.get("sql", "SELECT CAST(:x AS int) AS x")),
                {"x": int(request.params.get("x", "1"))},
            ).scalar()
        return {"value": value}

    yield make_app({"query": query}, settings={"c2c.sql_profiler_secret": "pr0f"})
    sql_profiler.PROFILER.reset()
    broadcast.BROADCASTER.reset()


def listening() -> bool:
    return event.contains(Engine, "after_cursor_execute", sql_profiler.PROFILER.after_cursor_execute)


def explains(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.getMessage().startswith("EXPLAIN")
    ]


def test_view_is_off_without_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQL_PROFILER_SECRET", raising=False)
    make_app().get("/c2c/sql_profiler", status=404)


def test_view_needs_the_secret(app: webtest.TestApp) -> None:
    app.get("/c2c/sql_profiler", status=403)
    app.get("/c2c/sql_profiler?secret=wrong", status=403)


def test_view_says_it_is_off_and_no_listener_is_installed(app: webtest.TestApp) -> None:
    assert app.get("/c2c/sql_profiler", headers=HEADERS).json == {"status": 200, "enabled": False}
    assert not listening()


def test_enable_installs_the_listener_and_disable_removes_it(app: webtest.TestApp) -> None:
    assert app.get("/c2c/sql_profiler?secret=pr0f&enable=1").json == {"status": 200, "enabled": True}
    assert listening()
    assert app.post("/c2c/sql_profiler", {"enable": "0"}, headers=HEADERS).json["enabled"] is False
    assert not listening()


def test_enable_is_stored_for_later_workers(app: webtest.TestApp) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    assert broadcast.stored(sql_profiler.CHANNEL) == {"enabled": {"enable": True}}


def test_bad_enable_is_400(app: webtest.TestApp) -> None:
    assert app.get("/c2c/sql_profiler?enable=maybe", headers=HEADERS, status=400).json["status"] == 400


def test_each_select_shape_is_explained_once_with_the_request_id(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        for x in (1, 2, 3):
            assert app.get(f"/query?x={x}", headers={"X-Request-ID": f"req-{x}"}).json == {"value": x}
    lines = explains(caplog)
    assert len(lines) == 1
    assert "req-1" in lines[0]
    assert "SELECT CAST(%(x)s AS int) AS x" in lines[0]
    assert "Result" in lines[0]
    assert "actual time=" in lines[0]  # ANALYZE: it ran


def test_only_statements_starting_with_select_are_explained(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        app.get("/query", params={"sql": "/* hint */ -- note\n  select CAST(:x AS int) + 1"})
        app.get("/query", params={"sql": "WITH a AS (SELECT CAST(:x AS int) AS v) SELECT v FROM a"})
        app.get("/query", params={"sql": "VALUES (CAST(:x AS int))"})
    lines = explains(caplog)
    assert len(lines) == 1
    assert "select CAST(%(x)s AS int) + 1" in lines[0]


def test_a_function_that_writes_is_called_once(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS c2c_profiler_calls (id serial)")
        connection.execute("TRUNCATE c2c_profiler_calls")
        connection.execute(
            "CREATE OR REPLACE FUNCTION c2c_profiler_touch(x int) RETURNS int LANGUAGE sql AS "
            "'INSERT INTO c2c_profiler_calls DEFAULT VALUES RETURNING x'"
        )
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        assert app.get("/query", params={"sql": "SELECT c2c_profiler_touch(:x)"}).json == {"value": 1}
    assert len(explains(caplog)) == 1
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT count(*) FROM c2c_profiler_calls").fetchone()
    assert row == (1,)  # the statement's own call, not EXPLAIN ANALYZE's


@pytest.fixture
def sequence(postgres_url: str) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SEQUENCE IF EXISTS c2c_profiler_seq")
        connection.execute("CREATE SEQUENCE c2c_profiler_seq")
    return "c2c_profiler_seq"


def test_nextval_is_planned_not_run(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture, sequence: str
) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    sql = f"SELECT nextval('{sequence}') + CAST(:x AS int) - 1"
    with caplog.at_level(logging.INFO, LOGGER):
        values = [app.get("/query", params={"sql": sql}).json["value"] for _ in range(2)]
    assert values == [1, 2]
    (line,) = explains(caplog)
    assert "not ANALYZE: it calls the volatile nextval" in line
    assert "actual time=" not in line


def test_a_session_advisory_lock_is_not_taken_twice(
    app: webtest.TestApp, engine: sqlalchemy.Engine, postgres_url: str
) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_advisory_lock(4242)")).scalar() == ""
        assert connection.execute(text("SELECT pg_advisory_unlock(4242)")).scalar() is True
        with psycopg.connect(postgres_url, autocommit=True) as other:
            row = other.execute("SELECT pg_try_advisory_lock(4242), pg_advisory_unlock(4242)").fetchone()
        assert row == (True, True)


def test_a_volatile_function_of_the_app_is_called_once(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture, postgres_url: str, sequence: str
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "CREATE OR REPLACE FUNCTION c2c_profiler_next(x int) RETURNS bigint VOLATILE LANGUAGE plpgsql "
            f"AS $$ BEGIN RETURN nextval('{sequence}') * x; END $$"
        )
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        assert app.get("/query", params={"sql": "SELECT c2c_profiler_next(:x)"}).json == {"value": 1}
        assert app.get("/query", params={"sql": "SELECT c2c_profiler_next(:x)", "x": "10"}).json == {
            "value": 20
        }
    assert "volatile c2c_profiler_next" in explains(caplog)[0]


def test_a_function_that_says_stable_but_calls_nextval_is_not_run_by_the_profiler(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture, postgres_url: str, sequence: str
) -> None:
    """Mislabelled: the read-only savepoint refuses its nextval, so ANALYZE fails, and says so."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "CREATE OR REPLACE FUNCTION c2c_profiler_sneaky(x int) RETURNS bigint STABLE LANGUAGE plpgsql "
            f"AS $$ BEGIN RETURN nextval('{sequence}') * x; END $$"
        )
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        values = [app.get("/query", params={"sql": "SELECT c2c_profiler_sneaky(:x)"}).json for _ in range(2)]
    assert values == [{"value": 1}, {"value": 2}]
    assert "could not explain" in caplog.text


def test_immutable_functions_are_analyzed(app: webtest.TestApp, caplog: pytest.LogCaptureFixture) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        app.get("/query", params={"sql": "SELECT abs(CAST(:x AS int)) + length(md5('a'))"})
    (line,) = explains(caplog)
    assert "actual time=" in line


def test_off_again_nothing_is_explained(app: webtest.TestApp, caplog: pytest.LogCaptureFixture) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    app.get("/c2c/sql_profiler?enable=0", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER):
        app.get("/query?x=5")
    assert explains(caplog) == []


def test_a_failing_explain_does_not_break_the_request(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture, engine: sqlalchemy.Engine
) -> None:
    app.get("/c2c/sql_profiler?enable=1", headers=HEADERS)
    with caplog.at_level(logging.INFO, LOGGER), engine.begin() as connection:
        # EXPLAIN of a statement that ran fine but cannot be explained: a SELECT INTO.
        connection.execute(text("SELECT 1 AS a INTO TEMPORARY TABLE c2c_profiler_tmp"))
        assert connection.execute(text("SELECT a FROM c2c_profiler_tmp")).scalar() == 1
    assert "could not explain" in caplog.text


def test_a_switch_while_redis_is_paused_is_applied_here_and_queued_202(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    for name in ("SQL_PROFILER_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    sql_profiler.PROFILER.reset()
    settings = {
        "c2c.sql_profiler_secret": "pr0f",
        "c2c.redis_url": redis_server.url,
        "c2c.broadcast_prefix": f"test_{uuid.uuid4().hex}",
    }
    app = make_app(settings=settings)
    try:
        with redis_server.paused():
            answer = app.get("/c2c/sql_profiler?enable=1", headers=HEADERS, status=202).json
        assert (answer["enabled"], "queued" in answer["message"]) == (True, True)

        def stored() -> object:
            with contextlib.suppress(broadcast.TransportError):
                return broadcast.stored(sql_profiler.CHANNEL)
            return None

        wait_until(
            lambda: stored() == {"enabled": {"enable": True}}, 5, "the switch is stored once Redis answers"
        )
    finally:
        sql_profiler.PROFILER.reset()
        broadcast.BROADCASTER.reset()
