"""c2cwsgiutils.health_check with real servers under c2cwsgiutils_run (gunicorn).

URL checks call a real server; the timing and replica tests run the checks in real gunicorn
workers (testing/health_check_app.py) against the local PostgreSQL primary and its replica; the
version check compares two gunicorns of two workers each through the local Redis. The report's
shape, in-process: tests/unit/test_health_check.py.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from c2cwsgiutils.acceptance.utils import wait_until
from c2cwsgiutils.health_check import HealthCheck
from testing import health_check_app
from testing.fixtures import StartServer, postgres_cluster, wait_for_postgres
from tests.apps.health_check import dispose_engines, make_app

REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()


# URL checks, calling a real server.


class _Recorder(QuietHandler):
    """Answers 200 and keeps the path and headers of each GET."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.path, dict(self.headers)))
        self.send_body(200, b"{}")


def test_url_check_sends_upstream_61_s_params_and_headers_from_functions_of_the_request() -> None:
    """c2cgeoportal's checker: ``params`` a mapping, ``headers`` a function of the (internal) request."""
    _Recorder.seen = []
    with stub_server(_Recorder) as url:

        def setup(health_check: HealthCheck, config: Configurator) -> None:
            health_check.add_url_check(
                url=lambda request: url + "/search",
                name="checker_fulltextsearch",
                params={"query": "berne", "limit": "1"},
                headers=lambda request: {"Host": "geo.test", "X-From": request.host},
                level=1,
                timeout=5,
            )

        app = make_app(setup, **{"c2c.health_check_base_url": "http://127.0.0.1:6543"})
        assert app.get("/c2c/health_check", headers={"Host": "evil.test"}).json["successes"] == [
            "checker_fulltextsearch"
        ]
    ((path, headers),) = _Recorder.seen
    assert path == "/search?query=berne&limit=1"
    assert (headers["Host"], headers["X-From"]) == ("geo.test", "127.0.0.1:6543")


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
