"""c2cwsgiutils_run under real gunicorn processes, serving the example app."""

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from conftest import EXAMPLE_APP_INI, StartServer, request_in_flight, run_script


def run_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_script("c2cwsgiutils_run", env=env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("c2cwsgiutils_run: ")
    assert expected in result.stderr


def test_serves_the_app_of_the_ini(start_server: StartServer) -> None:
    server = start_server()
    assert requests.get(server.url("/api/ping"), timeout=5).json() == {"pong": True}


def test_gunicorn_replaces_the_run_process(start_server: StartServer) -> None:
    server = start_server()
    assert server.process is not None
    assert server.master_pid() == server.process.pid


def test_missing_config_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_command({"C2CWSGIUTILS_CONFIG": str(tmp_path / "missing.ini")})
    assert_one_line_error(result, "missing.ini: no such file")


def test_default_config_is_app_production_ini() -> None:
    if Path("/app/production.ini").exists():
        pytest.fail("/app/production.ini exists on this machine; this test needs it absent")
    result = run_script("c2cwsgiutils_run", unset=("C2CWSGIUTILS_CONFIG",))
    assert_one_line_error(result, "/app/production.ini: no such file")


def test_broken_config_is_a_one_line_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ini"
    broken.write_text("[app:main\nuse = egg:x\n", encoding="utf-8")
    assert_one_line_error(run_command({"C2CWSGIUTILS_CONFIG": str(broken)}), "broken.ini")


def test_config_using_an_unset_variable_is_a_one_line_error(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:c2cwsgiutils-app\nx = %(C2C_TEST_UNSET_VAR)s\n", encoding="utf-8")
    env = {"C2CWSGIUTILS_CONFIG": str(ini), "C2C_TEST_UNSET_VAR": ""}
    assert_one_line_error(run_command(env), "no environment variable C2C_TEST_UNSET_VAR is set")


def test_bad_gunicorn_setting_is_a_one_line_error() -> None:
    result = run_command({"C2CWSGIUTILS_CONFIG": str(EXAMPLE_APP_INI), "GUNICORN_WORKERS": "many"})
    assert_one_line_error(result, "GUNICORN_WORKERS='many'")


def test_unbalanced_gunicorn_params_is_a_one_line_error() -> None:
    result = run_command({"C2CWSGIUTILS_CONFIG": str(EXAMPLE_APP_INI), "GUNICORN_PARAMS": "--name 'x"})
    assert_one_line_error(result, "GUNICORN_PARAMS")


def test_gunicorn_params_are_appended(start_server: StartServer) -> None:
    server = start_server(env={"GUNICORN_PARAMS": "--workers 3"}, workers=1)
    assert len(server.worker_pids()) == 3


def wait_for_log(server_log: Callable[[], str], pattern: str, count: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found: list[str] = re.findall(pattern, server_log())
        if len(set(found)) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_logging_config_is_applied_in_every_worker(start_server: StartServer, tmp_path: Path) -> None:
    ini = tmp_path / "production.ini"
    text = EXAMPLE_APP_INI.read_text(encoding="utf-8").replace(
        "format = %(asctime)s", "format = WORKER-FORMAT pid=%(process)d %(asctime)s"
    )
    ini.write_text(text.replace("%(here)s", str(EXAMPLE_APP_INI.parent)), encoding="utf-8")
    server = start_server(config_file=ini, workers=3)
    pids = set(wait_for_log(server.log, r"WORKER-FORMAT pid=(\d+) .* c2cwsgiutils_app ready", 3))
    assert {int(pid) for pid in pids} == server.worker_pids()


def test_access_log_hides_secrets(start_server: StartServer) -> None:
    server = start_server()
    requests.get(server.url("/api/ping?secret=hunter2&name=x"), timeout=5)
    lines = wait_for_log(server.log, r'"GET (/api/ping\S*) HTTP', 1)
    assert lines == ["/api/ping?secret=***&name=x"]
    assert "hunter2" not in server.log()


def test_sigterm_lets_in_flight_requests_finish(start_server: StartServer) -> None:
    server = start_server(workers=1)
    with request_in_flight(server) as statuses:
        assert server.stop() == 0
    assert statuses == [200]
