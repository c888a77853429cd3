"""c2cwsgiutils_run under real gunicorn processes, serving the example app."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, free_port
from c2cwsgiutils.scripts.run import gunicorn_pid_file
from testing.fixtures import RequestInFlight, RunScript, StartServer

pytestmark = [pytest.mark.server]


def run_command(run_script: RunScript, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
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


def test_missing_config_is_a_one_line_error(tmp_path: Path, run_script: RunScript) -> None:
    result = run_command(run_script, {"C2CWSGIUTILS_CONFIG": str(tmp_path / "missing.ini")})
    assert_one_line_error(result, "missing.ini: no such file")


def test_default_config_is_app_production_ini(run_script: RunScript) -> None:
    if Path("/app/production.ini").exists():
        pytest.fail("/app/production.ini exists on this machine; this test needs it absent")
    result = run_script("c2cwsgiutils_run", unset=("C2CWSGIUTILS_CONFIG",))
    assert_one_line_error(result, "/app/production.ini: no such file")


def test_broken_config_is_a_one_line_error(tmp_path: Path, run_script: RunScript) -> None:
    broken = tmp_path / "broken.ini"
    broken.write_text("[app:main\nuse = egg:x\n", encoding="utf-8")
    assert_one_line_error(run_command(run_script, {"C2CWSGIUTILS_CONFIG": str(broken)}), "broken.ini")


def test_config_using_an_unset_variable_is_a_one_line_error(tmp_path: Path, run_script: RunScript) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:c2cwsgiutils-app\nx = %(C2C_TEST_UNSET_VAR)s\n", encoding="utf-8")
    env = {"C2CWSGIUTILS_CONFIG": str(ini)}
    assert_one_line_error(run_command(run_script, env), "no environment variable C2C_TEST_UNSET_VAR is set")


def test_check_accepts_a_variable_set_to_the_empty_string(tmp_path: Path, run_script: RunScript) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:c2cwsgiutils-app\nx = %(C2C_TEST_EMPTY_VAR)s\n", encoding="utf-8")
    result = run_script(
        "c2cwsgiutils_run", "--check", env={"C2CWSGIUTILS_CONFIG": str(ini), "C2C_TEST_EMPTY_VAR": ""}
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (
            "x = %(probe_db)s\n",
            {"PROBE_DB": "x"},
            "uses %(probe_db)s, but no environment variable probe_db is set",
        ),
        ("x = %(here)s\n", {"HERE": "/elsewhere"}, None),
        (
            "x = 1\n[loggers]\nkeys = root\n[handlers]\nkeys =\n[formatters]\nkeys =\n"
            "[logger_root]\nlevel = %(LOG_LEVEL)s\nhandlers =\n",
            {"LOG_LEVEL": "chatty"},
            "[logger_root] level = chatty: not a level name",
        ),
        ("use = egg:no-such-app\n", {}, "no-such-app"),
    ],
)
def test_check_is_one_line_for_what_would_break_the_workers(
    tmp_path: Path, run_script: RunScript, text: str, env: dict[str, str], expected: str | None
) -> None:
    ini = tmp_path / "app.ini"
    body = text if text.startswith("use") else "use = egg:c2cwsgiutils-app\n" + text
    ini.write_text("[app:main]\n" + body, encoding="utf-8")
    result = run_script("c2cwsgiutils_run", "--check", env={"C2CWSGIUTILS_CONFIG": str(ini), **env})
    if expected is None:
        assert (result.returncode, result.stderr) == (0, "")
    else:
        assert_one_line_error(result, expected)


def test_bad_gunicorn_setting_is_a_one_line_error(run_script: RunScript, example_app_ini: Path) -> None:
    result = run_command(
        run_script, {"C2CWSGIUTILS_CONFIG": str(example_app_ini), "GUNICORN_WORKERS": "many"}
    )
    assert_one_line_error(result, "GUNICORN_WORKERS='many'")


def test_unbalanced_gunicorn_params_is_a_one_line_error(run_script: RunScript, example_app_ini: Path) -> None:
    result = run_command(
        run_script, {"C2CWSGIUTILS_CONFIG": str(example_app_ini), "GUNICORN_PARAMS": "--name 'x"}
    )
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


def test_logging_config_is_applied_in_every_worker(
    start_server: StartServer, tmp_path: Path, example_app_ini: Path
) -> None:
    ini = tmp_path / "production.ini"
    text = example_app_ini.read_text(encoding="utf-8").replace(
        "format = %(asctime)s", "format = WORKER-FORMAT pid=%(process)d %(asctime)s"
    )
    ini.write_text(text.replace("%(here)s", str(example_app_ini.parent)), encoding="utf-8")
    server = start_server(config_file=ini, workers=3)
    pids = set(wait_for_log(server.log, r"WORKER-FORMAT pid=(\d+) .* c2cwsgiutils_app ready", 3))
    assert {int(pid) for pid in pids} == server.worker_pids()


def test_access_log_hides_secrets(start_server: StartServer) -> None:
    server = start_server()
    requests.get(server.url("/api/ping?secret=hunter2&name=x"), timeout=5)
    lines = wait_for_log(server.log, r'"GET (/api/ping\S*) HTTP', 1)
    assert lines == ["/api/ping?secret=***&name=x"]
    assert "hunter2" not in server.log()


def test_sigterm_lets_in_flight_requests_finish(
    start_server: StartServer, request_in_flight: RequestInFlight
) -> None:
    server = start_server(workers=1)
    with request_in_flight(server) as statuses:
        assert server.stop() == 0
    assert statuses == [200]


def test_access_log_keeps_the_protocol_after_a_secret_last_in_the_query(start_server: StartServer) -> None:
    server = start_server()
    requests.get(server.url("/api/ping?name=x&secret=hunter2"), timeout=5)
    lines = wait_for_log(server.log, r'"(GET /api/ping\S* HTTP/1.1)"', 1)
    assert lines == ["GET /api/ping?name=x&secret=*** HTTP/1.1"]
    assert "hunter2" not in server.log()


def test_access_log_hides_secrets_with_percent_encoded_names(start_server: StartServer) -> None:
    server = start_server()
    # Sent as written: requests would decode %77 to w.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/api/ping?pass%77ord=hunter2&%73ecret=hunter3")
    assert connection.getresponse().status == 200
    connection.close()
    lines = wait_for_log(server.log, r'"GET (/api/ping\S*) HTTP/1.1"', 1)
    assert lines == ["/api/ping?pass%77ord=***&%73ecret=***"]
    assert "hunter2" not in server.log()
    assert "hunter3" not in server.log()


def test_rejected_request_line_is_logged_without_its_secret(start_server: StartServer) -> None:
    # gunicorn quotes a request line it rejects in its own log (here for the tab in the target).
    server = start_server(workers=1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(b"GET /api/ping?secret=hunter2\tx HTTP/1.1\r\nHost: h\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 400")
    lines = wait_for_log(server.log, r"Invalid HTTP request line: (.*)", 1)
    assert lines == ["'GET /api/ping?secret=*** HTTP/1.1'"]  # gunicorn quotes the tab as \\t, not as a tab
    assert "hunter2" not in server.log()


def test_second_server_on_the_same_pid_file_stops_with_a_one_line_error(
    start_server: StartServer, run_script: RunScript, example_app_ini: Path
) -> None:
    first = start_server(workers=1)
    pid = first.master_pid()
    env = {
        "C2CWSGIUTILS_CONFIG": str(example_app_ini),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        "C2CWSGIUTILS_PID_FILE": str(first.pid_file),
    }
    result = run_command(run_script, env)
    assert result.stderr == (
        f"c2cwsgiutils_run: another server (pid {pid}) uses the pid file {first.pid_file}; "
        "set C2CWSGIUTILS_PID_FILE to another path\n"
    )
    assert result.returncode == 2
    assert first.master_pid() == pid
    assert json.loads(Path(f"{first.pid_file}.master").read_text(encoding="ascii"))["pid"] == pid
    assert requests.get(first.url("/api/ping"), timeout=5).json() == {"pong": True}


def test_two_servers_with_their_own_pid_files_both_run(start_server: StartServer) -> None:
    first, second = start_server(workers=1), start_server(workers=1)
    assert first.pid_file != second.pid_file
    assert first.master_pid() != second.master_pid()
    for server in (first, second):
        assert requests.get(server.url("/api/ping"), timeout=5).json() == {"pong": True}


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "stale",
    [
        "dead pid",
        "live pid without identity",  # gunicorn alone refuses to start: "Already running on PID"
        "live pid with another identity",
        "no pid",
    ],
)
def test_stale_pid_file_is_removed_and_the_server_starts(
    example_app_ini: Path, tmp_path: Path, stale: str
) -> None:
    server = AppServer(example_app_ini, env={"SQLALCHEMY_URL": f"sqlite:///{tmp_path}/app.sqlite"}, workers=1)
    identity_file = Path(f"{server.pid_file}.master")
    pid = {"dead pid": dead_pid(), "no pid": 0}.get(stale, os.getpid())  # a live pid: pytest's own
    server.pid_file.write_text("garbage\n" if stale == "no pid" else f"{pid}\n", encoding="ascii")
    if stale == "live pid with another identity":
        identity_file.write_text(json.dumps({"pid": pid, "start_time": 1, "boot_id": "x"}), encoding="ascii")
    with server:
        assert server.master_pid() not in (pid, os.getpid())
        assert json.loads(identity_file.read_text(encoding="ascii"))["pid"] == server.master_pid()
        assert requests.get(server.url("/api/ping"), timeout=5).json() == {"pong": True}
        note = server.log().splitlines()[0]
        assert note.startswith(f"c2cwsgiutils_run: {server.pid_file}: ")
        assert note.endswith("; removed it")


@pytest.mark.parametrize(
    ("args", "cmd_args", "expected"),
    [
        ([], "", "/env.pid"),
        (["--pid", "/a.pid"], "", "/a.pid"),
        (["--pid=/b.pid"], "", "/b.pid"),
        (["-p", "/c.pid", "--workers", "3"], "", "/c.pid"),
        (["-p/d.pid"], "", "/d.pid"),
        ([], "--pid /e.pid", "/e.pid"),
        (["--pid", "/f.pid"], "--pid /e.pid", "/f.pid"),  # the command line wins, as in gunicorn
    ],
)
def test_pid_file_checked_is_the_one_gunicorn_will_write(
    args: list[str], cmd_args: str, expected: str
) -> None:
    environ = {"C2CWSGIUTILS_PID_FILE": "/env.pid", "GUNICORN_CMD_ARGS": cmd_args}
    assert gunicorn_pid_file([sys.executable, "-m", "gunicorn", *args, "app:main"], environ) == expected


RELOADED_APP = """
def make(global_config, **settings):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [VERSION]
    return app
"""


def test_reload_serves_the_apps_new_code(
    tmp_path: Path, start_server: StartServer, run_script: RunScript
) -> None:
    """A reload (SIGHUP) serves the app's code as it is then: the master never imports the app's module
    (the check runs in a forked child; the logging set-up reads the factory's module from the ini)."""
    module = tmp_path / "reloaded_app.py"
    module.write_text(RELOADED_APP.replace("VERSION", "b'first'"), encoding="utf-8")
    ini = tmp_path / "reloaded.ini"
    ini.write_text("[app:main]\nuse = call:reloaded_app:make\n", encoding="utf-8")
    env = {"PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    server = start_server(env=env, config_file=ini, workers=1)
    assert requests.get(server.url("/"), timeout=5).text == "first"
    module.write_text(RELOADED_APP.replace("VERSION", "b'the second version'"), encoding="utf-8")
    before = server.worker_pids()
    assert (
        run_script("c2cwsgiutils_reload", env={"C2CWSGIUTILS_PID_FILE": str(server.pid_file)}).returncode == 0
    )
    deadline = time.monotonic() + 30
    while (server.worker_pids() & before or not server.worker_pids()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert requests.get(server.url("/"), timeout=5).text == "the second version"
