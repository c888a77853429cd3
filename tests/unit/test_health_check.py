"""c2cwsgiutils.health_check, in-process: the report, levels, selection, timeouts, liveness.

Custom and URL checks in WebTest apps; the Redis checks against a port where nothing answers; the
database checks' choice of engines on SQLite files.
Against the local PostgreSQL: tests/test_health_check_postgres.py; the local Redis:
tests/test_health_check_redis.py; real servers (gunicorn): tests/test_health_check_server.py.
"""

import inspect
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils.database.maintenance import MAINTENANCE
from c2cwsgiutils.db import setup_session
from c2cwsgiutils.health_check import EngineType, HealthCheck
from tests.apps.health_check import dispose_engines, make_app, redis_app


def fail(request: Request) -> None:
    raise RuntimeError("not happy")


def succeed(request: Request) -> None:
    return None


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()


def two_levels(health_check: HealthCheck, config: Configurator) -> None:
    health_check.add_custom_check("ok", succeed)
    health_check.add_custom_check("bad", fail, 2)


def test_report_has_exactly_the_spec_keys() -> None:
    response = make_app(two_levels).get("/c2c/health_check?max_level=2", status=500)
    assert response.json == {
        "status": 500,
        "successes": ["ok"],
        "failures": {"bad": {"message": "not happy"}},
    }


def test_default_level_is_1() -> None:
    response = make_app(two_levels).get("/c2c/health_check")
    assert response.json == {"status": 200, "successes": ["ok"], "failures": {}}


def test_max_level_0_runs_nothing() -> None:
    response = make_app(two_levels).get("/c2c/health_check?max_level=0")
    assert response.json == {"status": 200, "successes": [], "failures": {}}
    assert "Server-Timing" not in response.headers


def test_checks_selects_by_name_whatever_the_level() -> None:
    response = make_app(two_levels).get("/c2c/health_check?checks=bad", status=500)
    assert response.json == {"status": 500, "successes": [], "failures": {"bad": {"message": "not happy"}}}


def test_unknown_check_is_400() -> None:
    response = make_app(two_levels).get("/c2c/health_check?checks=ok,nope", status=400)
    assert "nope" in response.json["message"]


@pytest.mark.parametrize("level", ["high", "nan", "inf", "-1", "1.5", "1e3", "²", "٣", "1001", "9" * 50])
def test_only_a_non_negative_whole_number_is_a_level(level: str) -> None:
    response = make_app(two_levels).get("/c2c/health_check", params={"max_level": level}, status=400)
    assert "expected a whole number from 0 to 1000" in response.json["message"]


# Requests cannot choose what the checks call, nor what other requests see.


def test_a_url_check_s_function_gets_the_app_s_address_not_the_client_s_host() -> None:
    """``route_url`` of the client's request would call whatever host and port its Host names."""
    seen: list[str] = []

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        config.add_route("ping", "/api/ping")

        def url(request: Request) -> str:
            seen.append(request.route_url("ping"))
            return "http://127.0.0.1:1/"  # refused: the check fails, which is not the point here

        health_check.add_url_check(url, name="ping", timeout=1)

    app = make_app(setup, **{"c2c.health_check_base_url": "http://127.0.0.1:6543"})
    app.get("/c2c/health_check?checks=ping", headers={"Host": "169.254.169.254:80"}, status=500)
    assert seen == ["http://127.0.0.1:6543/api/ping"]


def test_a_url_check_s_function_defaults_to_the_first_address_of_gunicorn_bind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUNICORN_BIND", "unix:/tmp/x.sock 0.0.0.0:9123")
    seen: list[str] = []

    def url(request: Request) -> str:
        seen.append(request.url)
        return "http://127.0.0.1:1/"

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_url_check(url, name="u")

    make_app(setup).get("/c2c/health_check", headers={"Host": "evil.example:25"}, status=500)
    assert seen == ["http://127.0.0.1:9123/"]


def test_a_custom_check_s_run_is_not_shared_with_a_request_of_other_input() -> None:
    def unhappy_on_demand(request: Request) -> None:
        time.sleep(0.5)
        if request.params.get("unhappy"):
            raise RuntimeError("unhappy on demand")

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("custom", unhappy_on_demand)

    app = make_app(setup)
    answers: dict[str, int] = {}

    def ask(query: str) -> None:
        answers[query] = app.get(f"/c2c/health_check?{query}", expect_errors=True).status_int

    threads = [threading.Thread(target=ask, args=("unhappy=1",))]
    threads += [threading.Thread(target=ask, args=(query,)) for query in ("", "max_level=1")]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert answers == {"unhappy=1": 500, "": 200, "max_level=1": 200}


def test_runs_of_a_hanging_custom_check_with_distinct_inputs_are_capped() -> None:
    release = threading.Event()
    calls: list[str] = []

    def hang(request: Request) -> None:
        calls.append(request.query_string)
        release.wait(10)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("hang", hang, timeout=0.2)

    app = make_app(setup)
    try:
        for index in range(6):
            app.get(f"/c2c/health_check?x={index}", status=500)
        busy = app.get("/c2c/health_check?x=last", status=500).json["failures"]["hang"]["message"]
        assert busy == "4 runs of it are still in flight"
        assert len(calls) == 4
    finally:
        release.set()


# What a failure tells a client in production: no URL, no SQL, no parameters.


def test_a_failure_s_message_never_holds_a_url() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        def leak(request: Request) -> None:
            raise RuntimeError("cannot reach postgresql://app:pw@db.internal:5432/prod\nsecond line")

        health_check.add_custom_check("leak", leak)

    message = make_app(setup).get("/c2c/health_check", status=500).json["failures"]["leak"]["message"]
    assert message == "cannot reach postgresql://***"


def test_timings_in_the_header_and_on_request_in_the_body() -> None:
    app = make_app(two_levels)
    response = app.get("/c2c/health_check?max_level=2&timings=1", status=500)
    assert set(response.json["timings"]) == {"ok", "bad"}
    assert all(isinstance(value, float) for value in response.json["timings"].values())
    header = response.headers["Server-Timing"]
    assert header.startswith("ok;dur=")
    assert ", bad;dur=" in header
    assert 'desc="bad"' in header


def test_server_timing_names_are_tokens() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check('a "b"/c', succeed)

    header = make_app(setup).get("/c2c/health_check").headers["Server-Timing"]
    assert header.startswith("a__b__c;dur=")
    assert header.endswith('desc="a \\"b\\"/c"')


def test_stacktrace_only_in_development() -> None:
    response = make_app(two_levels, **{"c2c.development": "true"}).get(
        "/c2c/health_check?max_level=2", status=500
    )
    failure = response.json["failures"]["bad"]
    assert failure["message"] == "not happy"
    assert any("RuntimeError: not happy" in line for line in failure["stacktrace"])


def test_duplicate_name_is_refused() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("x", succeed)
        health_check.add_custom_check("x", succeed)

    with pytest.raises(ValueError, match="already"):
        make_app(setup)


def test_a_hung_check_is_not_started_again() -> None:
    calls: list[float] = []
    release = threading.Event()

    def hang(request: Request) -> None:
        calls.append(time.monotonic())
        release.wait(10)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("hang", hang, timeout=0.3)
        health_check.add_custom_check("ok", succeed)

    app = make_app(setup)
    try:
        first = app.get("/c2c/health_check", status=500).json
        assert first["successes"] == ["ok"]
        assert first["failures"]["hang"]["message"].startswith("timed out after 0.3 s")
        started = time.monotonic()
        second = app.get("/c2c/health_check", status=500).json
        assert time.monotonic() - started < 0.2  # its deadline has passed already
        assert "hang" in second["failures"]
        assert len(calls) == 1
    finally:
        release.set()
    time.sleep(0.1)
    app.get("/c2c/health_check", status=200)
    assert len(calls) == 2


def test_liveness_touches_nothing() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("bad", fail)

    app = make_app(setup)
    assert app.get("/c2c/health").json == {"status": 200}
    assert app.head("/c2c/health").status_int == 200


def test_liveness_without_any_health_check() -> None:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/c2c/health").json == {"status": 200}
    assert app.get("/c2c/").json["views"]["health"] == "/c2c/health"
    app.get("/c2c/health_check", status=404)


# Redis.


def test_redis_check_fails_without_telling_the_password() -> None:
    response = redis_app("redis://:hunter2@127.0.0.1:1/0").get("/c2c/health_check", status=500)
    assert set(response.json["failures"]) == {"redis"}
    assert "hunter2" not in response.text


def test_add_redis_check_fails_when_redis_does_not_answer() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_redis_check(name="cache")

    app = make_app(setup, **{"c2c.redis_url": "redis://:hunter2@127.0.0.1:1/0", "c2c.redis_timeout": "1s"})
    response = app.get("/c2c/health_check", status=500)
    assert set(response.json["failures"]) == {"cache"}
    assert "hunter2" not in response.text


def test_add_redis_check_without_redis_is_refused() -> None:
    with pytest.raises(RuntimeError, match="C2C_REDIS_URL"):
        make_app(lambda health_check, config: health_check.add_redis_check())


# Concurrent requests.


def test_concurrent_requests_share_one_run_of_a_check() -> None:
    calls: list[int] = []

    def slow(request: Request) -> None:
        calls.append(1)
        time.sleep(0.3)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_custom_check("slow", slow)

    app = make_app(setup)
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(app.get("/c2c/health_check").status_int))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4
    assert len(calls) == 1


# The version check.


def test_version_check_without_a_versions_file_passes() -> None:
    """As upstream's: nothing to compare (a development run)."""

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_version_check()

    app = make_app(setup, **{"c2c.versions_path": "/nonexistent/versions.json"})
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == ["version"]


# The database checks' engines (upstream 6.1's engine_type), on SQLite files.


def db_app(tmp_path: Path, replica: bool = True, **check: Any) -> webtest.TestApp:
    """An app checking a session whose primary has the table ``t`` and whose replica has none."""
    with sqlite3.connect(tmp_path / "primary.db") as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER)")
    settings = {"sqlalchemy.url": f"sqlite:///{tmp_path / 'primary.db'}"}
    if replica:
        settings["sqlalchemy_slave.url"] = f"sqlite:///{tmp_path / 'replica.db'}"

    def query(session: Any) -> None:
        from sqlalchemy import text

        session.execute(text("SELECT * FROM t"))

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy", "sqlalchemy_slave" if replica else None)[0]
        health_check.add_db_session_check(session, query, **check)

    return make_app(setup, **settings)


def test_db_check_checks_every_engine_by_default(tmp_path: Path) -> None:
    body = db_app(tmp_path).get("/c2c/health_check", status=500).json
    assert body["successes"] == ["db_engine_sqlalchemy"]
    assert list(body["failures"]) == ["db_engine_sqlalchemy_slave"]
    explicit = db_app(tmp_path, engine_type=EngineType.READ_AND_WRITE).get("/c2c/health_check", status=500)
    assert explicit.json == body


def test_db_check_of_the_primary_only(tmp_path: Path) -> None:
    body = db_app(tmp_path, engine_type=EngineType.WRITE_ONLY).get("/c2c/health_check").json
    assert body == {"status": 200, "successes": ["db_engine_sqlalchemy"], "failures": {}}


def test_db_check_of_the_replica_only(tmp_path: Path) -> None:
    body = db_app(tmp_path, engine_type=EngineType.READ_ONLY).get("/c2c/health_check", status=500).json
    assert (body["successes"], list(body["failures"])) == ([], ["db_engine_sqlalchemy_slave"])


@pytest.mark.parametrize("engine_type", list(EngineType))
def test_db_check_without_a_replica_checks_its_one_engine(tmp_path: Path, engine_type: EngineType) -> None:
    app = db_app(tmp_path, replica=False, engine_type=engine_type)
    assert app.get("/c2c/health_check").json["successes"] == ["db_engine_sqlalchemy"]


def test_db_check_of_the_primary_only_is_skipped_during_maintenance(tmp_path: Path) -> None:
    app = db_app(tmp_path, engine_type=EngineType.WRITE_ONLY)
    MAINTENANCE.apply(True)
    try:
        body = app.get("/c2c/health_check").json
    finally:
        MAINTENANCE.reset()
    assert body["skipped"] == {"db_engine_sqlalchemy": "read-only database maintenance"}


def test_engine_type_is_keyword_only_and_upstream_s_values() -> None:
    """Upstream's fifth positional argument; ours is ``timeout``."""
    assert {member.name: member.value for member in EngineType} == {
        "READ_ONLY": 1,
        "WRITE_ONLY": 2,
        "READ_AND_WRITE": 3,
    }
    parameters = inspect.signature(HealthCheck.add_db_session_check).parameters
    assert list(parameters)[5] == "timeout"
    assert parameters["engine_type"].kind is inspect.Parameter.KEYWORD_ONLY
