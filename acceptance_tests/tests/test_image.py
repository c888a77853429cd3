"""The example app's image (acceptance_tests/app/Dockerfile, FROM the base image), run for real.

Runs when C2C_TEST_IMAGE names the app image, as `make acceptance-image` does after building it;
the containers are buildah working containers on the host network (see image_server.py).
"""

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from acceptance_tests.image_server import ImageServer, image_config
from c2cwsgiutils import settings_catalogue
from tests.fixtures import Load

IMAGE = os.environ.get("C2C_TEST_IMAGE", "")
pytestmark = pytest.mark.skipif(
    not IMAGE, reason="C2C_TEST_IMAGE is not set: `make acceptance-image` builds the image and runs this"
)


@pytest.fixture(scope="module")
def app(postgres_url: str) -> Iterator[ImageServer]:
    """The app image on the local PostgreSQL, on a free loopback port."""
    server = ImageServer(IMAGE)
    server.env.update({"SQLALCHEMY_URL": postgres_url, "GUNICORN_WORKERS": "2"})
    with server:
        yield server


def get(app: ImageServer, path: str, **kwargs: object) -> requests.Response:
    return requests.get(app.url(path), timeout=10, **kwargs)  # type: ignore[arg-type]


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def test_ping(app: ImageServer) -> None:
    assert get(app, "/api/ping").json() == {"pong": True}


def test_ops_index_answers_json(app: ImageServer) -> None:
    response = get(app, "/c2c/")
    assert response.status_code == 200
    assert response.json()["base_path"] == "/c2c"


def test_unknown_route_is_json_404(app: ImageServer) -> None:
    response = get(app, "/no/such/page")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_unexpected_error_is_json_500_without_stacktrace(app: ImageServer) -> None:
    response = get(app, "/api/error")
    assert response.status_code == 500
    assert response.json()["status"] == 500
    assert "stacktrace" not in response.json()
    assert "failure on demand" not in response.text


def test_request_id_is_echoed(app: ImageServer) -> None:
    assert get(app, "/api/ping", headers={"X-Request-ID": "image-42"}).headers["X-Request-ID"] == "image-42"


def test_duplicate_insert_on_postgresql_is_400(app: ImageServer) -> None:
    value = f"image-{uuid.uuid4()}"
    first = requests.post(app.url("/api/hello"), json={"value": value}, timeout=10)
    second = requests.post(app.url("/api/hello"), json={"value": value}, timeout=10)
    assert first.status_code == 201
    assert second.status_code == 400
    assert "duplicate key" in second.json()["message"]


def test_health_check_and_liveness(app: ImageServer) -> None:
    assert get(app, "/c2c/health").json() == {"status": 200}
    # Level 1 is the example app's URL check of its own /api/ping, through the container's port.
    assert get(app, "/c2c/health_check").json() == {"status": 200, "successes": ["ping"], "failures": {}}


def test_versions_json_is_the_file_written_at_build(app: ImageServer) -> None:
    response = get(app, "/c2c/versions.json")
    assert response.status_code == 200
    versions = response.json()
    # scripts/image-build.sh passes the commit as GIT_HASH to c2cwsgiutils_genversion.py.
    assert re.fullmatch(r"[0-9a-f]{40}", versions["main"]["git_hash"]), versions["main"]
    assert {"c2cwsgiutils", "c2cwsgiutils-app", "pyramid"} <= set(versions["packages"])
    written = app.exec("cat", "/app/versions.json")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout) == versions


def test_start_prints_no_python_warning(app: ImageServer) -> None:
    assert "Warning:" not in app.log()


def test_gunicorn_runs_as_non_root(app: ImageServer) -> None:
    master = app.master_pid()
    assert uid_of(master) != 0
    assert all(uid_of(pid) != 0 for pid in app.worker_pids())


def test_exec_runs_as_non_root(app: ImageServer) -> None:
    result = app.exec("id", "-u")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) != 0


def test_healthcheck_command_passes(app: ImageServer) -> None:
    result = app.exec("c2cwsgiutils_healthcheck", env={"GUNICORN_BIND": f"127.0.0.1:{app.port}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/c2c/health: 200" in result.stdout  # the liveness view, which touches no dependency


def test_image_declares_healthcheck_user_port_and_command() -> None:
    config = image_config(IMAGE)
    assert config["Cmd"] == ["c2cwsgiutils_run"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"] == ["CMD", "c2cwsgiutils_healthcheck"]
    assert config["WorkingDir"] == "/app"


def test_image_sets_setting_defaults_and_no_secret() -> None:
    env = dict(item.split("=", 1) for item in image_config(IMAGE)["Env"])
    for name, default in settings_catalogue.image_environment().items():
        assert env.get(name) == default, name
    assert not [name for name in env if "SECRET" in name or "PASSWORD" in name]


def test_image_has_oci_labels() -> None:
    labels = image_config(IMAGE)["Labels"]
    for name in ("version", "revision", "source", "created"):
        assert labels.get(f"org.opencontainers.image.{name}"), name


def test_image_has_no_compiler(app: ImageServer) -> None:
    result = app.exec("sh", "-c", "command -v gcc cc x86_64-linux-gnu-gcc || true")
    assert result.stdout.strip() == ""


def test_reload_inside_the_container_drops_no_request(app: ImageServer) -> None:
    with Load(app.url("/api/ping")) as load:
        load.wait_for_requests(50)
        for _ in range(2):
            before = app.worker_pids()
            result = app.exec("c2cwsgiutils_reload")
            assert result.returncode == 0, result.stderr
            deadline = time.monotonic() + 30
            while app.worker_pids() & before or not app.worker_pids():
                assert time.monotonic() < deadline, "workers not replaced"
                time.sleep(0.1)
            load.wait_for_requests(50)  # served by the new workers
    assert set(load.outcomes) == {"200"}, load.outcomes
    assert load.outcomes["200"] > 100


def test_starts_with_an_empty_environment() -> None:
    """No -e at all: the image's defaults alone serve the app on :8080, on its SQLite file.

    The container has a network namespace of its own, so port 8080 is free whatever the host runs.
    """
    with ImageServer(IMAGE, env={}, port=8080, private_network=True) as server:
        assert server.request("GET", "/api/ping") == (200, '{"pong": true}')
        assert server.request("POST", "/api/hello", {"value": "empty-env"})[0] == 201
        assert server.exec("c2cwsgiutils_healthcheck").returncode == 0


# The features that have landed, switched on in the image by their settings, as a user would.
FEATURE_SECRET = "image-secret"  # noqa: S105 (a test secret)


@pytest.fixture(scope="module")
def featured(postgres_url: str, postgres_replica_url: str) -> Iterator[ImageServer]:
    """The app image with JSON logs, the log level view, stats.json, Prometheus, Redis and the replica."""
    server = ImageServer(IMAGE)
    server.env.update(
        {
            "SQLALCHEMY_URL": postgres_url,
            "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
            "GUNICORN_WORKERS": "3",
            "LOG_TYPE": "json",
            "LOG_VIEW_SECRET": FEATURE_SECRET,
            "STATS_VIEW": "1",
            "C2C_PROMETHEUS": "1",
            "C2C_REDIS_URL": "redis://127.0.0.1:6379/0",
            "C2C_BROADCAST_PREFIX": f"image-{uuid.uuid4()}",
        }
    )
    with server:
        deadline = time.monotonic() + 60
        while len([line for line in server.log().splitlines() if "ready in process" in line]) < 3:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        yield server


def json_log(server: ImageServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_image_logs_json_with_the_request(featured: ImageServer) -> None:
    requests.get(featured.url("/api/ping"), headers={"X-Request-ID": "image-json"}, timeout=10)
    deadline = time.monotonic() + 10
    while not [r for r in json_log(featured) if r.get("request_id") == "image-json"]:
        assert time.monotonic() < deadline, featured.log()
        time.sleep(0.1)
    (access,) = [r for r in json_log(featured) if r.get("request_id") == "image-json"]
    assert (access["facility"], access["status"], access["path"]) == ("gunicorn.access", 200, "/api/ping")


def test_image_log_level_view_reaches_every_worker(featured: ImageServer) -> None:
    headers = {"X-API-Key": FEATURE_SECRET}
    url = featured.url("/c2c/logging/level")
    assert requests.post(
        url, data={"name": "c2cwsgiutils_app", "level": "DEBUG"}, headers=headers, timeout=10
    ).ok
    deadline = time.monotonic() + 5
    while True:
        answers = [
            requests.get(
                f"{url}?name=c2cwsgiutils_app", headers={**headers, "Connection": "close"}, timeout=10
            )
            for _ in range(12)
        ]
        if {answer.json()["level"] for answer in answers} == {"DEBUG"}:
            break
        assert time.monotonic() < deadline, [answer.json() for answer in answers]
        time.sleep(0.1)


def test_image_stats_and_prometheus_count_the_requests(featured: ImageServer) -> None:
    requests.get(featured.url("/c2c/stats.json?reset=1"), timeout=10)
    for _ in range(9):
        requests.get(featured.url("/api/ping"), headers={"Connection": "close"}, timeout=10)
    timers = requests.get(featured.url("/c2c/stats.json"), timeout=10).json()["timers"]
    assert timers["route/GET/ping/200"]["nb"] == 9
    metrics = requests.get(featured.url("/c2c/metrics"), timeout=10).text
    assert 'route="ping"' in metrics


def test_image_reads_from_the_replica(featured: ImageServer) -> None:
    answer = requests.get(featured.url("/api/hello"), timeout=10).json()
    assert answer["in_recovery"] is True
