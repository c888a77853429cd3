"""c2cwsgiutils.wsgi_app: the original's ``gunicorn c2cwsgiutils.wsgi_app:application`` command line."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from c2cwsgiutils import wsgi_app
from c2cwsgiutils.acceptance.server import clean_environ, console_script, free_port
from c2cwsgiutils.acceptance.utils import wait_until, wait_url
from testing.fixtures import EXAMPLE_APP_INI

pytestmark = [pytest.mark.server]


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    return clean_environ(
        {
            "C2CWSGIUTILS_CONFIG": str(EXAMPLE_APP_INI),
            "SQLALCHEMY_URL": f"sqlite:///{tmp_path}/app.sqlite",
            "LOG_TYPE": "json",
        }
    )


@pytest.fixture
def gunicorn(app_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """gunicorn started as the original's c2cwsgiutils_run started it, naming ``application``."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                console_script("gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "c2cwsgiutils.wsgi_app:application",
            ],
            env=app_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(30)


def test_gunicorn_serves_the_app_of_c2cwsgiutils_config(gunicorn: tuple[str, Path]) -> None:
    base_url, log = gunicorn
    try:
        assert wait_url(f"{base_url}/api/ping", 30).json() == {"pong": True}
    except TimeoutError:
        pytest.fail(log.read_text(encoding="utf-8", errors="replace"))
    assert requests.get(f"{base_url}/c2c/health", timeout=10).json()["status"] == 200


def test_each_worker_applies_the_ini_logging(gunicorn: tuple[str, Path]) -> None:
    """The ini's handlers (LOG_TYPE=json) write the app's records, with the request's ID."""
    base_url, log = gunicorn
    wait_url(f"{base_url}/api/ping", 30)
    requests.get(f"{base_url}/api/sleep?seconds=0", headers={"X-Request-ID": "wsgi-app-1"}, timeout=10)
    wait_until(lambda: "wsgi-app-1" in log.read_text(encoding="utf-8"), 10, "the app's log record")
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if "sleeping" in line]
    assert len(lines) == 1
    assert json.loads(lines[0])["request_id"] == "wsgi-app-1"


def run_python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_module_loads_no_app(app_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "import c2cwsgiutils.wsgi_app as module\n"
        "print('application' in vars(module), 'c2cwsgiutils_app' in sys.modules)\n"
    )
    assert run_python(code, app_env) == "False False\n"


def test_application_is_loaded_once_on_first_access(app_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "import c2cwsgiutils.wsgi_app as module\n"
        "first = module.application\n"
        "print(first is module.application, 'application' in vars(module))\n"
        "print('c2cwsgiutils_app' in sys.modules, type(first).__name__)\n"
    )
    # The app's own start-up record (the ini's JSON handler, on stdout) comes first.
    assert run_python(code, app_env).splitlines()[-2:] == ["True True", "True Router"]


def test_other_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = wsgi_app.nothing  # type: ignore[attr-defined]
