"""Today's clients' shapes under the real c2cwsgiutils_run (issue 23).

- tests/apps/tile_server.py uses the toolkit as tilecloud-chain 1.23's server does: index
  additions, ``auth_view`` and ``check_access`` behind a security policy, ``JsonCheckException``
  in a custom check, and ``MemoryMapCollector`` on prometheus_client's registry.
- c2cgeoportal 2.9's production.ini puts the app behind PasteDeploy filters named by entry point:
  ``pipeline = egg:c2cwsgiutils#client_info egg:c2cwsgiutils#sentry app``.
"""

import re
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
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
