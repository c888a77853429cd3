"""Today's clients' shapes under the real c2cwsgiutils_run (issue 23).

- tests/apps/tile_server.py uses the toolkit as tilecloud-chain 1.23's server does: index
  additions, ``auth_view`` and ``check_access`` behind a security policy, ``JsonCheckException``
  in a custom check, and ``MemoryMapCollector`` on prometheus_client's registry.
- c2cgeoportal 2.9's production.ini puts the app behind PasteDeploy filters named by entry point:
  ``pipeline = egg:c2cwsgiutils#client_info egg:c2cwsgiutils#sentry app``, and its image runs
  plain ``gunicorn --paste`` with the scaffold's gunicorn.conf.py.
"""

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, clean_environ, console_script, free_port
from c2cwsgiutils.acceptance.utils import wait_until, wait_url
from testing.fixtures import StartServer

pytestmark = [pytest.mark.server]

REPO = Path(__file__).parents[1]
SECRET = "tiles-operator-secret-4471"  # noqa: S105 (made up)
OPERATOR = {"X-API-Key": SECRET}
HTML = {"Accept": "text/html"}
TILE_SERVER_INI = """\
[app:main]
use = call:tests.apps.tile_server:factory
tiles.broken = true
"""


@pytest.fixture
def tile_server(start_server: StartServer, tmp_path: Path) -> AppServer:
    ini = tmp_path / "tiles.ini"
    ini.write_text(TILE_SERVER_INI, encoding="utf-8")
    return start_server(env={"PYTHONPATH": str(REPO), "C2C_SECRET": SECRET}, config_file=ini, workers=1)


def test_the_index_page_shows_the_operators_additions_to_the_operator_only(tile_server: AppServer) -> None:
    anybody = requests.get(tile_server.url("/c2c/"), headers=HTML, timeout=10)
    assert anybody.status_code == 200
    assert re.search(r'<a href="/admin"[^>]*>Tiles admin</a>', anybody.text)
    assert "Run a generation" not in anybody.text
    operator = requests.get(tile_server.url("/c2c/"), headers={**HTML, **OPERATOR}, timeout=10)
    assert re.search(r'<a href="/admin/run"[^>]*>Run a generation</a>', operator.text)
    assert re.search(r'<a href="/admin"[^>]*>Tiles admin</a>', operator.text)


def test_the_admin_page_asks_check_access_through_the_security_policy(tile_server: AppServer) -> None:
    anybody = requests.get(tile_server.url("/admin"), timeout=10).json()
    assert anybody == {"has_access": False, "auth_type": "SECRET", "github": False}
    operator = requests.get(tile_server.url("/admin"), headers=OPERATOR, timeout=10).json()
    assert operator["has_access"] is True
    wrong = requests.get(tile_server.url("/admin"), headers={"X-API-Key": "not-the-secret"}, timeout=10)
    assert wrong.json()["has_access"] is False


def test_an_admin_action_is_for_the_operator_only(tile_server: AppServer) -> None:
    refused = requests.post(tile_server.url("/admin/run"), timeout=10)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/json")
    assert refused.json()["status"] == 403
    assert SECRET not in refused.text
    done = requests.post(tile_server.url("/admin/run"), headers=OPERATOR, timeout=10)
    assert (done.status_code, done.json()) == (200, {"ran": True})


def test_the_admin_page_opened_with_the_secret_lets_its_own_scripts_run_actions(
    tile_server: AppServer,
) -> None:
    """tilecloud-chain's admin page: opened with ``?secret=``, its fetch() calls carry no secret."""
    browser = requests.Session()
    assert browser.get(tile_server.url("/admin"), params={"secret": SECRET}, timeout=10).json()["has_access"]
    assert SECRET not in str(browser.cookies.get_dict())  # a signed session, not the secret
    done = browser.post(tile_server.url("/admin/run"), timeout=10)  # the cookie alone
    assert (done.status_code, done.json()) == (200, {"ran": True})
    # From another site, the same cookie opens nothing (SameSite=Strict, and the Fetch metadata).
    refused = browser.post(
        tile_server.url("/admin/run"), headers={"Sec-Fetch-Site": "cross-site"}, timeout=10
    )
    assert refused.status_code == 403


def test_a_failing_custom_check_carries_its_json_into_the_report(tile_server: AppServer) -> None:
    answer = requests.get(tile_server.url("/c2c/health_check"), timeout=10)
    assert answer.status_code == 500
    failure = answer.json()["failures"]["tiles_config"]
    assert failure["message"] == "the tile configuration has errors"
    assert failure["result"] == {"layers": ["'roads' has no grid"]}
    assert requests.get(tile_server.url("/c2c/health"), timeout=10).json()["status"] == 200
    assert "Traceback" not in tile_server.log()  # the collectors registered, the app started cleanly


GEOPORTAL_INI = """\
[pipeline:main]
pipeline = egg:c2cwsgiutils#client_info egg:c2cwsgiutils#sentry app

[app:app]
use = call:tests.apps.client_info:factory
# The app's own client_info tween is off: what the answer sees comes from the pipeline's filter.
c2c.client_info = false
"""


def test_c2cgeoportals_pipeline_of_filters_named_by_entry_point(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The filters load by their ``egg:c2cwsgiutils#...`` names and the client_info one applies."""
    ini = tmp_path / "geoportal.ini"
    ini.write_text(GEOPORTAL_INI, encoding="utf-8")
    server = start_server(env={"PYTHONPATH": str(REPO)}, config_file=ini, workers=1)
    # The app's own client_info tween is off: what the answer sees comes from the pipeline's filter.
    client = requests.get(
        server.url("/client"),
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "geo.test",
        },
        timeout=10,
    ).json()
    assert (client["client_addr"], client["scheme"], client["host"]) == ("203.0.113.9", "https", "geo.test")
    assert client["peer"] == "127.0.0.1"


GEOPORTAL_GUNICORN_CONF = """
import os

from c2cwsgiutils import get_config_defaults, prometheus
from prometheus_client import multiprocess

bind = "127.0.0.1:{port}"
workers = 2
accesslog = "-"
logconfig_dict = {{
    "version": 1,
    "root": {{"level": "INFO", "handlers": [os.environ["LOG_TYPE"]]}},
    "loggers": {{"gunicorn.error": {{"level": "INFO"}}}},
    "handlers": {{
        "console": {{"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"}},
        "json": {{
            "class": "c2cwsgiutils.pyramid_logging.JsonLogHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        }},
    }},
    "formatters": {{"generic": {{"format": "%(message)s"}}}},
}}
raw_paste_global_conf = ["=".join(e) for e in get_config_defaults().items()]


def on_starting(server):
    prometheus.start()


def post_fork(server, worker):
    prometheus.cleanup()


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
"""

GEOPORTAL_PRODUCTION_INI = """\
[app:app]
use = call:tests.apps.client_info:factory
geo.visible_entry_point = %(VISIBLE_ENTRY_POINT)s

[pipeline:main]
pipeline = egg:c2cwsgiutils#client_info egg:c2cwsgiutils#sentry app
"""


def _client_count(text: str) -> float:
    found = re.findall(
        r'^c2cwsgiutils_request_duration_seconds_count\{method="GET",route="client",status="200"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return sum(float(value) for value in found)


def _listening_inode(port: int) -> str:
    """The inode of the socket listening on ``port`` (any address), from /proc/net/tcp and tcp6."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def test_c2cgeoportals_own_command_gunicorn_paste_with_its_gunicorn_conf(tmp_path: Path) -> None:
    """c2cgeoportal's image: plain ``gunicorn --paste=/app/production.ini`` and the scaffold's config.

    The scaffold's gunicorn.conf.py: ``raw_paste_global_conf`` from ``get_config_defaults()`` (the
    environment as the ini's ``%(NAME)s``), ``logconfig_dict`` naming ``JsonLogHandler``, the
    Prometheus hooks; the ini's pipeline of the toolkit's filters. No c2cwsgiutils_run: the master
    serves every worker's metrics on the port (``prometheus.start()``), and the workers do not keep
    the master's listening socket open (``prometheus.cleanup()``).
    """
    app_port, metrics_port = free_port(), free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        GEOPORTAL_GUNICORN_CONF.format(port=app_port), encoding="utf-8"
    )
    (tmp_path / "production.ini").write_text(GEOPORTAL_PRODUCTION_INI, encoding="utf-8")
    (tmp_path / "prometheus").mkdir()
    env = clean_environ(
        {
            "PYTHONPATH": str(REPO),
            "LOG_TYPE": "json",
            "VISIBLE_ENTRY_POINT": "/geo%/",  # a % in the environment: escaped for the ini
            "C2C_PROMETHEUS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        }
    )
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        # gunicorn reads ./gunicorn.conf.py by default, as in c2cgeoportal's /app.
        master = subprocess.Popen(
            [console_script("gunicorn"), "--paste=production.ini"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        try:
            wait_url(f"http://127.0.0.1:{app_port}/client", 30)
        except TimeoutError:
            pytest.fail(log.read_text(encoding="utf-8", errors="replace"))
        answer = requests.get(
            f"http://127.0.0.1:{app_port}/client",
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Request-ID": "geo-1"},
            timeout=10,
        ).json()
        assert (answer["client_addr"], answer["scheme"]) == ("203.0.113.9", "https")
        for _ in range(3):
            requests.get(f"http://127.0.0.1:{app_port}/client", timeout=10, headers={"Connection": "close"})
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert _client_count(text) == 5  # wait_url's, geo-1 and three more, from both workers
        assert f'process_resident_memory_bytes{{pid="{master.pid}"}}' in text
        assert (
            f'c2cwsgiutils_process_smap_pss_bytes{{name="[heap]",pid="{master.pid}"}}' in text
        )  # as upstream's
        workers = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text(encoding="ascii").split()
        assert len(workers) == 2
        listening = _listening_inode(metrics_port)
        assert listening in _socket_inodes(master.pid)
        for worker in workers:
            assert listening not in _socket_inodes(int(worker))
        wait_until(lambda: "geo-1" in log.read_text(encoding="utf-8"), 10, "the app's JSON log record")
    finally:
        master.terminate()
        master.wait(30)
    records = [
        json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")
    ]
    (answered,) = [record for record in records if record.get("request_id") == "geo-1"]
    assert answered["short_message"] == "client_info_app answered"
    assert (answered["request_id"], answered["client_addr"]) == ("geo-1", "203.0.113.9")
