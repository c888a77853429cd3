"""The pytest plugin (c2cwsgiutils.acceptance.pytest_plugin), in pytest runs of their own."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from c2cwsgiutils.acceptance.composition import ProcessComposition
from testing.fixtures import EXAMPLE_APP_INI
from tests.apps import echo as echo_app
from tests.docker_standin import Docker

pytestmark = [pytest.mark.server]

REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessComposition]:
    ini = tmp_path_factory.mktemp("echo") / "echo.ini"
    ini.write_text(echo_app.INI, encoding="utf-8")
    with ProcessComposition(ini, env={"PYTHONPATH": str(REPO)}, workers=1) as composition:
        yield composition


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``directory`` as a user would, without this run's C2C_TEST_* variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("C2C_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_app_url_option_points_the_fixtures_at_a_running_app(
    tmp_path: Path, echo: ProcessComposition
) -> None:
    (tmp_path / "test_it.py").write_text(
        "def test_connection(connection, app_url, composition):\n"
        "    assert composition.kind == 'external'\n"
        "    assert connection.base_url == app_url\n"
        "    assert connection.get_json('/echo')['method'] == 'GET'\n"
        "\n"
        "def test_logs(composition):\n"
        "    composition.logs()\n",
        encoding="utf-8",
    )
    result = run_pytest(tmp_path, "--c2c-app-url", echo.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert f"the logs of the app at {echo.base_url} are not reachable from the tests" in result.stdout


def test_process_composition_serves_the_ini_with_the_env_of_the_conftest(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def c2c_app_env(tmp_path_factory):\n"
        "    return {'SQLALCHEMY_URL': f'sqlite:///{tmp_path_factory.mktemp(\"db\")}/app.sqlite'}\n",
        encoding="utf-8",
    )
    (tmp_path / "test_it.py").write_text(
        "from c2cwsgiutils.acceptance.utils import wait_until\n"
        "def test_ping(connection, composition):\n"
        "    assert composition.kind == 'process'\n"
        "    assert connection.get_json('/api/ping') == {'pong': True}\n"
        "    # The access log is written off the request thread, a moment after the answer.\n"
        "    wait_until(lambda: connection.last_request_id in composition.logs(), 5, 'the access line')\n",
        encoding="utf-8",
    )
    result = run_pytest(tmp_path, "--c2c-app-ini", str(EXAMPLE_APP_INI))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_image_composition_without_an_image_fails_saying_so(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text("def test_it(app_url):\n    pass\n", encoding="utf-8")
    result = run_pytest(tmp_path, "--c2c-composition", "image")
    assert result.returncode == 1
    assert "the image composition needs --c2c-image (or C2C_TEST_IMAGE)" in result.stdout


@pytest.mark.parametrize("keep", [False, True])
def test_compose_composition_is_taken_down_at_the_end_unless_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """The Compose CLI is the recording stand-in (tests/docker_standin.py): no Docker engine here."""
    docker = Docker(tmp_path, monkeypatch)
    docker.script(port={"stdout": "0.0.0.0:49153\n"})
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_it.py").write_text(
        "def test_url(app_url, composition):\n"
        "    assert (composition.kind, app_url) == ('compose', 'http://127.0.0.1:49153')\n",
        encoding="utf-8",
    )
    options = ["--c2c-composition", "compose", "--c2c-compose-file", "c.yaml"]
    options += ["--c2c-compose-service", "web", "--c2c-compose-port", "80", *(["--c2c-keep"] if keep else [])]
    result = run_pytest(tests, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [call[3:] for call in docker.calls()]
    assert calls[:3] == [["version", "--short"], ["build"], ["up", "--detach", "--remove-orphans"]]
    assert ["port", "web", "80"] in calls
    assert (calls[-1][0] == "down") is not keep
