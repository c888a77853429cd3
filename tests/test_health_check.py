"""c2cwsgiutils.health_check: the report, levels, selection, timeouts, the database, alembic, Redis.

The timing and database tests run the checks in a real gunicorn (testing/health_check_app.py) against
the local PostgreSQL primary and its replica; the report's shape is checked in process.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import webtest
from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.utils import wait_until
from c2cwsgiutils.db import ENGINES_KEY, setup_session
from c2cwsgiutils.health_check import HealthCheck
from testing import health_check_app
from testing.fixtures import StartServer, postgres_cluster, wait_for_postgres

REPO = Path(__file__).parent.parent
APP_DIR = REPO / "acceptance_tests" / "app"


def fail(request: Request) -> None:
    raise RuntimeError("not happy")


def succeed(request: Request) -> None:
    return None


_REGISTRIES: list[Any] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _REGISTRIES:
        for engine in _REGISTRIES.pop().get(ENGINES_KEY, {}).values():
            engine.dispose()


def make_app(setup: Callable[[HealthCheck, Configurator], None], **settings: str) -> webtest.TestApp:
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    _REGISTRIES.append(config.registry)
    setup(HealthCheck(config), config)
    return webtest.TestApp(config.make_wsgi_app())


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


def test_a_failing_db_check_shows_the_driver_s_first_line_only(postgres_url: str) -> None:
    def query(session: Any) -> None:
        from sqlalchemy import text

        session.execute(text("SELECT * FROM no_such_table_c2c WHERE secret = :value"), {"value": "p4ss"})

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, query_cb=query)

    app = make_app(setup, **{"sqlalchemy.url": postgres_url})
    message = app.get("/c2c/health_check", status=500).json["failures"]["db_engine_sqlalchemy"]["message"]
    assert message == 'relation "no_such_table_c2c" does not exist'
    development = make_app(setup, **{"sqlalchemy.url": postgres_url, "c2c.development": "true"})
    detail = development.get("/c2c/health_check", status=500).json["failures"]["db_engine_sqlalchemy"]
    assert "[SQL:" in detail["message"]


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


def test_url_check_is_named_by_its_url_and_scrubs_secrets(start_server: StartServer) -> None:
    server = start_server(workers=1)
    good = server.url("/api/ping")
    refused = "http://user:hunter2@127.0.0.1:1/x?secret=s3cr3t&other=1"

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_url_check(good)
        health_check.add_url_check(refused, name="refused", timeout=2)
        health_check.add_url_check(server.url("/nothing"), name="404")

    response = make_app(setup).get("/c2c/health_check", status=500)
    assert response.json["successes"] == [good]
    assert set(response.json["failures"]) == {"refused", "404"}
    text = response.text
    assert "hunter2" not in text
    assert "s3cr3t" not in text
    assert "404" in response.json["failures"]["404"]["message"]


def test_url_check_with_its_own_check_cb(start_server: StartServer) -> None:
    server = start_server(workers=1)

    def check_cb(request: Request, response: requests.Response) -> None:
        if response.json() != {"pong": False}:
            raise ValueError(f"unexpected answer {response.text}")

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_url_check(server.url("/api/ping"), name="ping", check_cb=check_cb)

    response = make_app(setup).get("/c2c/health_check", status=500)
    assert "unexpected answer" in response.json["failures"]["ping"]["message"]


def test_url_check_fails_on_an_error_status_even_with_a_check_cb(start_server: StartServer) -> None:
    """As the original's: the status is checked first, ``check_cb`` only adds to it."""
    server = start_server(workers=1)
    called: list[int] = []

    def check_cb(request: Request, response: requests.Response) -> None:
        called.append(response.status_code)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_url_check(server.url("/nothing"), "missing", check_cb)
        health_check.add_url_check(server.url("/api/ping"), "ping", check_cb, 3, 1)

    response = make_app(setup).get("/c2c/health_check", status=500)
    assert response.json["successes"] == ["ping"]
    assert "404" in response.json["failures"]["missing"]["message"]
    assert called == [200]


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


def redis_app(url: str) -> webtest.TestApp:
    config = Configurator(settings={"c2c.redis_url": url, "c2c.redis_timeout": "1s"})
    HealthCheck(config)
    return webtest.TestApp(config.make_wsgi_app())


@pytest.mark.redis
def test_redis_check_when_redis_is_configured() -> None:
    assert redis_app("redis://127.0.0.1:6379/0").get("/c2c/health_check").json["successes"] == ["redis"]


def test_redis_check_fails_without_telling_the_password() -> None:
    response = redis_app("redis://:hunter2@127.0.0.1:1/0").get("/c2c/health_check", status=500)
    assert set(response.json["failures"]) == {"redis"}
    assert "hunter2" not in response.text


@pytest.mark.redis
def test_add_redis_check_sets_the_name_and_level_of_the_redis_check() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_redis_check(name="cache", level=2)

    app = make_app(setup, **{"c2c.redis_url": "redis://127.0.0.1:6379/0"})
    assert app.get("/c2c/health_check").json["successes"] == []
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == ["cache"]


@pytest.mark.redis
def test_add_redis_check_with_the_defaults_is_the_redis_check() -> None:
    app = make_app(
        lambda health_check, config: health_check.add_redis_check(),
        **{"c2c.redis_url": "redis://127.0.0.1:6379/0"},
    )
    assert app.get("/c2c/health_check").json["successes"] == ["redis"]


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


# In real gunicorn workers.


@pytest.fixture
def start_health_app(start_server: StartServer, tmp_path: Path) -> Callable[..., AppServer]:
    def start(env: dict[str, str] | None = None, **settings: str) -> AppServer:
        ini = tmp_path / f"health-{uuid.uuid4().hex}.ini"
        lines = "\n".join(f"{key} = {value}" for key, value in settings.items())
        ini.write_text(health_check_app.INI.format(settings=lines), encoding="utf-8")
        return start_server(env={"PYTHONPATH": str(REPO), **(env or {})}, config_file=ini, workers=2)

    return start


def timed_get(url: str) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.get(url, timeout=30)
    return time.monotonic() - started, response


def test_five_checks_of_200_ms_answer_well_under_a_second(start_health_app: Callable[..., AppServer]) -> None:
    server = start_health_app(**{"health.sleepers": "5"})
    elapsed, response = timed_get(server.url("/c2c/health_check?timings=1"))
    assert response.status_code == 200
    assert sorted(response.json()["successes"]) == [f"sleep_{index}" for index in range(5)]
    assert all(value >= 199 for value in response.json()["timings"].values())
    assert elapsed < 0.6


def test_a_hanging_check_fails_by_its_timeout(start_health_app: Callable[..., AppServer]) -> None:
    server = start_health_app(**{"health.sleepers": "2", "health.hang": "true"})
    elapsed, response = timed_get(server.url("/c2c/health_check"))
    assert response.status_code == 500
    body = response.json()
    assert sorted(body["successes"]) == ["sleep_0", "sleep_1"]
    assert body["failures"]["hang"]["message"].startswith("timed out after 1 s")
    assert 0.9 < elapsed < 2.0


def test_db_checks_follow_the_replica(
    start_health_app: Callable[..., AppServer], postgres_url: str, postgres_replica_url: str
) -> None:
    server = start_health_app(
        env={"C2C_DB_REPLICA_RETRY": "300ms"},
        **{"sqlalchemy.url": postgres_url, "sqlalchemy_slave.url": postgres_replica_url},
    )
    url = server.url("/c2c/health_check")
    answer = requests.get(url, timeout=30).json()
    assert answer == {
        "status": 200,
        "successes": ["db_engine_sqlalchemy", "db_engine_sqlalchemy_slave"],
        "failures": {},
    }
    try:
        postgres_cluster("replica", "stop")
        for _ in range(3):  # both workers
            response = requests.get(url, timeout=30)
            assert response.status_code == 500
            body = response.json()
            assert body["successes"] == ["db_engine_sqlalchemy"]
            assert "replica does not answer" in body["failures"]["db_engine_sqlalchemy_slave"]["message"]
    finally:
        postgres_cluster("replica", "start")
        wait_for_postgres(postgres_replica_url)
    deadline = time.monotonic() + 15
    while [requests.get(url, timeout=30).status_code for _ in range(3)] != [200, 200, 200]:
        assert time.monotonic() < deadline, "the replica's check did not pass again"
        time.sleep(0.2)


# Alembic, with the example app's migration.


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    name = f"health_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def upgrade(url: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-c", str(APP_DIR / "alembic.ini"), "upgrade", "head"],
        env={**os.environ, "SQLALCHEMY_URL": url},
        check=True,
        capture_output=True,
        timeout=60,
    )


def alembic_app(url: str, ini_path: str) -> webtest.TestApp:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_alembic_check(session, ini_path)

    return make_app(setup, **{"sqlalchemy.url": url})


def test_alembic_check_fails_before_the_migration_and_passes_after(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(APP_DIR)
    app = alembic_app(fresh_database, "alembic.ini")  # relative to the current directory
    before = app.get("/c2c/health_check?max_level=2", status=500).json
    assert before["failures"]["alembic_alembic.ini"]["message"] == (
        "sqlalchemy is at revision none, the scripts' head is 0001_hello"
    )
    upgrade(fresh_database)
    after = app.get("/c2c/health_check?max_level=2").json
    assert after == {"status": 200, "successes": ["alembic_alembic.ini"], "failures": {}}


def test_alembic_check_is_level_2_and_named_after_its_path(fresh_database: str) -> None:
    upgrade(fresh_database)
    app = alembic_app(fresh_database, str(APP_DIR / "alembic.ini"))
    name = "alembic_" + str(APP_DIR / "alembic.ini").replace("/", "_").strip("_")
    assert app.get("/c2c/health_check").json["successes"] == []
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == [name]


def test_alembic_check_needs_an_existing_file(postgres_url: str) -> None:
    with pytest.raises(FileNotFoundError):
        alembic_app(postgres_url, "/no/such/alembic.ini")


def test_db_check_with_a_model_fails_on_an_empty_table(fresh_database: str) -> None:
    from c2cwsgiutils_app import models

    upgrade(fresh_database)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, at_least_one_model=models.Hello)

    app = make_app(setup, **{"sqlalchemy.url": fresh_database})
    answer = app.get("/c2c/health_check", status=500).json
    assert answer["failures"] == {"db_engine_sqlalchemy": {"message": "the table hello has no row"}}
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute("INSERT INTO hello (value) VALUES ('hi')")
    assert app.get("/c2c/health_check").json["successes"] == ["db_engine_sqlalchemy"]


def test_db_check_with_a_query_cb(postgres_url: str) -> None:
    seen: list[Any] = []

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, query_cb=seen.append, level=1)

    make_app(setup, **{"sqlalchemy.url": postgres_url}).get("/c2c/health_check")
    assert len(seen) == 1


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


# The version check: two gunicorns of two workers each, sharing the local Redis.


def versions_file(directory: Path, git_hash: str) -> Path:
    path = directory / f"versions-{git_hash}.json"
    path.write_text(json.dumps({"main": {"git_hash": git_hash}, "packages": {}}), encoding="utf-8")
    return path


def start_two_gunicorns(
    start_health_app: Callable[..., AppServer], tmp_path: Path, first: str, second: str
) -> tuple[AppServer, AppServer]:
    shared = {"C2C_REDIS_URL": "redis://127.0.0.1:6379/0", "C2C_BROADCAST_PREFIX": f"test-{uuid.uuid4()}"}
    servers = []
    for git_hash in (first, second):
        env = {**shared, "C2C_VERSIONS_PATH": str(versions_file(tmp_path, git_hash))}
        servers.append(start_health_app(env, **{"health.version": "true"}))
    return servers[0], servers[1]


@pytest.mark.redis
def test_version_check_names_the_version_of_every_process(
    start_health_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    first, _ = start_two_gunicorns(start_health_app, tmp_path, "aaa111", "bbb222")
    expected = (
        "the processes run different versions: "
        "aaa111 (2 processes, this one among them), bbb222 (2 processes)"
    )

    def message() -> str | None:
        response = requests.get(first.url("/c2c/health_check?max_level=2"), timeout=30)
        assert response.status_code == 500, response.text
        found: str = response.json()["failures"]["version"]["message"]
        return found if found == expected else None

    # Until every worker has loaded the app (and subscribed), fewer processes answer.
    wait_until(message, what="the four processes' versions in the message", timeout=30)


@pytest.mark.redis
def test_version_check_passes_when_every_process_runs_the_same_version(
    start_health_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    first, second = start_two_gunicorns(start_health_app, tmp_path, "ccc333", "ccc333")
    for server in (first, second):
        body = requests.get(server.url("/c2c/health_check?max_level=2"), timeout=30).json()
        assert body["successes"] == ["redis", "version"]
    assert requests.get(first.url("/c2c/health_check"), timeout=30).json()["successes"] == [
        "redis"
    ]  # level 2


def test_version_check_without_a_versions_file_passes() -> None:
    """As upstream's: nothing to compare (a development run)."""

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_version_check()

    app = make_app(setup, **{"c2c.versions_path": "/nonexistent/versions.json"})
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == ["version"]
