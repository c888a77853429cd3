"""The example app's image (acceptance_tests/app/Dockerfile, FROM the base image), run for real.

Runs when C2C_TEST_IMAGE names the app image, as `make acceptance-image` does after building it;
the containers are buildah working containers on the host network (c2cwsgiutils.acceptance.container_image).
`app` is the suite's image composition (``--c2c-composition image``, acceptance_tests/tests/conftest.py).
The image built from a Dockerfile written for the original base image (no USER line) is the legacy
app's, tested by its own suite (acceptance_tests/tests_legacy) in the same make target.
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

from c2cwsgiutils import settings_catalogue
from c2cwsgiutils.acceptance.composition import BaseComposition, ImageComposition
from c2cwsgiutils.acceptance.container_image import ImageServer, image_config
from c2cwsgiutils.acceptance.sentry import SentryReceiver
from c2cwsgiutils.acceptance.source_address import session_from
from testing.fixtures import Load

IMAGE = os.environ.get("C2C_TEST_IMAGE", "")
pytestmark = pytest.mark.skipif(
    not IMAGE, reason="C2C_TEST_IMAGE is not set: `make acceptance-image` builds the image and runs this"
)


@pytest.fixture(scope="module")
def app(composition: BaseComposition) -> ImageServer:
    """The app image on the local PostgreSQL (and its replica), on a free loopback port."""
    assert isinstance(composition, ImageComposition), "run with --c2c-composition image"
    return composition.server


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
    """The example app's image starts as its USER 33:33 (as `docker run --user`): kept, no switch.

    The legacy app's image starts as root and switches (acceptance_tests/tests_legacy).
    """
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


def test_composition_run_is_a_fresh_container_of_the_image(composition: BaseComposition) -> None:
    # No pid file: not the running container; a uid other than 0: the image's user.
    result = composition.run(
        "app", "sh", "-c", 'test ! -e "${C2CWSGIUTILS_PID_FILE:-/tmp/c2cwsgiutils.pid}" && id -u'
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout) != 0


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
            "DB_MAINTENANCE_SECRET": FEATURE_SECRET,
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


def _access_record(server: ImageServer, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in json_log(server) if r.get("request_id") == request_id and "status" in r]
        if found:
            return found[0]
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)


def test_image_believes_forwarding_headers_from_loopback_only(featured: ImageServer) -> None:
    """The image's default C2C_TRUSTED_PROXIES: 127.0.0.1 (a proxy in the container), not 127.0.0.3."""
    forged = {"X-Forwarded-For": "203.0.113.7"}
    session_from("127.0.0.3").get(
        featured.url("/api/ping"), headers={**forged, "X-Request-ID": "proxy-untrusted"}, timeout=10
    )
    requests.get(featured.url("/api/ping"), headers={**forged, "X-Request-ID": "proxy-trusted"}, timeout=10)
    assert _access_record(featured, "proxy-untrusted")["client_addr"] == "127.0.0.3"
    assert _access_record(featured, "proxy-trusted")["client_addr"] == "203.0.113.7"


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


def test_image_dbsession_and_read_only_maintenance(featured: ImageServer) -> None:
    """request.dbsession commits (pyramid_tm, zope.sqlalchemy in the image); maintenance refuses writes."""
    greetings = featured.url("/api/greetings")
    maintenance = featured.url("/c2c/db/maintenance")
    headers = {"X-API-Key": FEATURE_SECRET}
    assert requests.post(f"{greetings}?value=image-{uuid.uuid4()}", timeout=10).status_code == 201
    assert requests.post(f"{maintenance}?readonly=true", headers=headers, timeout=10).json()["readonly"]
    try:
        deadline = time.monotonic() + 10
        while True:
            refused = [
                requests.post(
                    f"{greetings}?value=image-{uuid.uuid4()}", headers={"Connection": "close"}, timeout=10
                )
                for _ in range(6)
            ]
            if {response.status_code for response in refused} == {503}:
                break
            assert time.monotonic() < deadline, [response.status_code for response in refused]
            time.sleep(0.1)
        assert refused[0].headers["Retry-After"] == "60"
        read = requests.get(greetings, timeout=10)
        assert (read.status_code, read.json()["in_recovery"]) == (200, True)
        assert requests.get(featured.url("/c2c/health_check"), timeout=10).json()["maintenance"]["readonly"]
    finally:
        requests.post(f"{maintenance}?readonly=false", headers=headers, timeout=10)
    deadline = time.monotonic() + 10
    while requests.post(f"{greetings}?value=image-{uuid.uuid4()}", timeout=10).status_code != 201:
        assert time.monotonic() < deadline, "writes refused after the maintenance"
        time.sleep(0.1)


def test_image_serves_the_ops_page_with_its_files(featured: ImageServer) -> None:
    page = requests.get(featured.url("/c2c/"), headers={"Accept": "text/html"}, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert 'id="logging_level"' in page.text
    # The page's own files are package data of the installed wheel.
    for name, content_type in (("page.css", "text/css"), ("page.js", "text/javascript")):
        asset = requests.get(featured.url(f"/c2c/page/{name}"), timeout=10)
        assert asset.headers["Content-Type"].startswith(content_type), name
    assert requests.get(featured.url("/c2c/"), timeout=10).json()["base_path"] == "/c2c"


def test_image_ops_page_session_opens_the_log_level_view(featured: ImageServer) -> None:
    login = requests.post(
        featured.url("/c2c/page/login"), data={"secret": FEATURE_SECRET}, allow_redirects=False, timeout=10
    )
    assert login.status_code == 303
    # requests keeps Secure cookies for HTTPS only: send it back by hand, as a browser on HTTPS does.
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    assert FEATURE_SECRET not in cookie
    level = requests.get(featured.url("/c2c/logging/level?name=root"), headers={"Cookie": cookie}, timeout=10)
    assert level.status_code == 200


# Sentry and the CORS services in the image: a stand-in for Sentry's ingestion on the host network.


@pytest.fixture(scope="module")
def sentry_receiver() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def reporting(sentry_receiver: SentryReceiver) -> Iterator[ImageServer]:
    """The app image reporting to the stand-in, with a tag and the secret of the log level view."""
    server = ImageServer(IMAGE)
    server.env.update(
        {
            "SENTRY_URL": sentry_receiver.dsn,
            "SENTRY_TAG_SERVICE": "image",
            "SENTRY_CLIENT_ENVIRONMENT": "image-test",
            "LOG_VIEW_SECRET": FEATURE_SECRET,
            "GUNICORN_WORKERS": "2",
        }
    )
    with server:
        yield server


def test_image_reports_a_500_to_sentry_once_without_secrets(
    reporting: ImageServer, sentry_receiver: SentryReceiver
) -> None:
    response = requests.get(reporting.url(f"/api/error?secret={FEATURE_SECRET}"), timeout=10)
    assert response.status_code == 500
    assert requests.get(reporting.url("/api/error?status=403"), timeout=10).status_code == 403
    (event,) = sentry_receiver.wait_for_events(1)
    time.sleep(1)  # a second event would have come by now
    assert len(sentry_receiver.events) == 1
    assert event["tags"]["route"] == "error"
    assert event["tags"]["service"] == "image"
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    assert event["environment"] == "image-test"
    assert FEATURE_SECRET not in sentry_receiver.raw().decode()


def test_image_serves_the_cors_services(reporting: ImageServer) -> None:
    origin = "http://page.example"
    preflight = requests.options(
        reporting.url("/api/cors/credentials"),
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    answer = requests.get(reporting.url("/api/cors/public"), headers={"Origin": origin}, timeout=10)
    assert (answer.json(), answer.headers["Access-Control-Allow-Origin"]) == ({"cors": True}, "*")
    assert answer.headers["Cache-Control"] == "no-cache"


# What today's clients (c2cgeoportal 2.9, tilecloud-chain 1.23) need of the image: the names they
# import and the PasteDeploy filters their ini names by entry point (tests/unit/client_names.toml).
CLIENTS_CHECK = """
from importlib.metadata import entry_points

from paste.deploy import loadfilter

import c2cwsgiutils
from c2cwsgiutils import auth, auth_github, db, debug, health_check, index, pretty_json, prometheus
from c2cwsgiutils import setup_process
from c2cwsgiutils.loader import Loader

filters = entry_points(group="paste.filter_factory")
own = {e.name: e.value for e in filters if e.value.startswith("c2cwsgiutils")}
assert set(own) == {"client_info", "sentry"}, own
for name in own:
    assert callable(loadfilter("egg:c2cwsgiutils#" + name)(lambda environ, start_response: []))
for module, name in [
    (c2cwsgiutils, "get_config_defaults"), (auth, "check_access_config"), (auth, "AuthenticationType"),
    (db, "create_session"), (debug, "get_size"), (health_check, "JsonCheckException"),
    (index, "additional_auth"), (pretty_json, "_FastDumps"), (prometheus, "MemoryMapCollector"),
    (prometheus, "start"), (setup_process, "bootstrap_application_from_options"),
]:
    assert hasattr(module, name), name
print("clients ok")
"""


def test_image_has_what_today_s_clients_import(app: ImageServer) -> None:
    result = app.exec("python3", "-c", CLIENTS_CHECK)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "clients ok"
