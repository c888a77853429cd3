"""c2cwsgiutils_reload against a real gunicorn serving the example app."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, clean_environ, console_script, free_port
from testing.fixtures import Load, RequestInFlight, RunScript, StartServer

pytestmark = [pytest.mark.server]


def reload(run_script: RunScript, server: AppServer) -> subprocess.CompletedProcess[str]:
    return run_script("c2cwsgiutils_reload", env={"C2CWSGIUTILS_PID_FILE": str(server.pid_file)})


def wait_for_new_workers(server: AppServer, old: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if pids and not pids & old:
            return pids
        time.sleep(0.1)
    raise TimeoutError(f"workers not replaced: {old} -> {server.worker_pids()}")


def test_reload_replaces_every_worker(start_server: StartServer, run_script: RunScript) -> None:
    server = start_server(workers=2)
    before = server.worker_pids()
    assert reload(run_script, server).returncode == 0
    after = wait_for_new_workers(server, before)
    assert len(after) == 2


def test_reload_rolls_new_workers_in_before_the_old_ones_stop(
    start_server: StartServer, run_script: RunScript
) -> None:
    server = start_server(workers=2)
    before = server.worker_pids()
    result = reload(run_script, server)
    assert result.returncode == 0, result.stderr
    # The command returns once the old workers are gone, the new ones serving.
    after = server.worker_pids()
    assert len(after) == 2
    assert not after & before
    assert result.stdout == (
        f"c2cwsgiutils_reload: gunicorn (pid {server.master_pid()}) replaced its workers "
        f"{sorted(before)} by {sorted(after)}, ready before the old ones stopped\n"
    )
    assert requests.get(server.url("/api/ping"), timeout=5).json() == {"pong": True}


def test_reload_with_hup_is_gunicorns_own_reload(start_server: StartServer, run_script: RunScript) -> None:
    server = start_server(workers=2)
    before = server.worker_pids()
    result = run_script("c2cwsgiutils_reload", "--hup", "--pid-file", str(server.pid_file))
    assert result.returncode == 0, result.stderr
    assert wait_for_new_workers(server, before)
    assert "Handling signal: hup" in server.log()


SLOW_APP = """
import os, time
def make(global_config, **settings):
    if os.path.exists(os.environ["SLOW_MARKER"]):
        time.sleep(10)  # the new code takes longer to load than the reload waits (2 s)
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"served"]
    return app
"""


def test_reload_gives_up_in_one_line_and_the_old_workers_keep_serving(
    tmp_path: Path, start_server: StartServer, run_script: RunScript
) -> None:
    (tmp_path / "slow_app.py").write_text(SLOW_APP, encoding="utf-8")
    ini = tmp_path / "slow.ini"
    ini.write_text("[app:main]\nuse = call:slow_app:make\n", encoding="utf-8")
    marker = tmp_path / "slow"
    env = {"PYTHONPATH": str(tmp_path), "SLOW_MARKER": str(marker)}
    server = start_server(env=env, config_file=ini, workers=1)
    before = server.worker_pids()
    marker.touch()
    result = run_script("c2cwsgiutils_reload", "--timeout", "2", "--pid-file", str(server.pid_file))
    assert (result.returncode, result.stderr) == (
        1,
        "c2cwsgiutils_reload: gave up waiting for the new workers to load the app;"
        " the master keeps serving\n",
    )
    assert before <= server.worker_pids()
    assert requests.get(server.url("/"), timeout=5).text == "served"


def test_reload_lets_in_flight_requests_finish(
    start_server: StartServer, run_script: RunScript, request_in_flight: RequestInFlight
) -> None:
    server = start_server(workers=1)
    with request_in_flight(server) as statuses:
        assert reload(run_script, server).returncode == 0
    assert statuses == [200]


def test_reload_under_load_drops_no_request(start_server: StartServer, run_script: RunScript) -> None:
    server = start_server(workers=2)
    with Load(server.url("/api/ping")) as load:
        load.wait_for_requests(50)
        for _ in range(2):
            before = server.worker_pids()
            assert reload(run_script, server).returncode == 0
            wait_for_new_workers(server, before)
            load.wait_for_requests(50)  # served by the new workers
    assert set(load.outcomes) == {"200"}, load.outcomes
    assert load.outcomes["200"] > 100


def test_reload_without_pid_file_is_a_one_line_error(tmp_path: Path, run_script: RunScript) -> None:
    result = run_script("c2cwsgiutils_reload", "--pid-file", str(tmp_path / "none.pid"))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"c2cwsgiutils_reload: {tmp_path / 'none.pid'}: no such file; is c2cwsgiutils_run running?\n"
    )


# A process that is not a gunicorn master but whose command line says "gunicorn" (what the old
# check looked for). It reports the signals it gets; SIGUSR1, sent by the test after the reload
# command has returned, marks the end: Python runs pending handlers in signal-number order, so a
# SIGHUP sent earlier is reported first.
DECOY = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: print("SIGHUP", flush=True))
signal.signal(signal.SIGUSR1, lambda *_: print("SIGUSR1", flush=True))
print("ready", flush=True)
while True:
    time.sleep(1)
"""
BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()


def start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat, read here independently of c2cwsgiutils.server.master_identity."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return int(stat.rpartition(")")[2].split()[22 - 3])


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", DECOY, "gunicorn", "-c", "python:c2cwsgiutils.gunicorn_config"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    assert b"gunicorn" in Path(f"/proc/{process.pid}/cmdline").read_bytes()
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def signals_received(decoy: subprocess.Popen[str]) -> list[str]:
    """Return the signals the decoy reported before the SIGUSR1 sent now."""
    assert decoy.stdout is not None
    decoy.send_signal(signal.SIGUSR1)
    received = []
    while (line := decoy.stdout.readline().strip()) != "SIGUSR1":
        received.append(line)
    return received


def write_pid_file(path: Path, pid: int, identity: dict[str, object] | None = None) -> Path:
    path.write_text(f"{pid}\n", encoding="ascii")
    if identity is not None:
        Path(f"{path}.master").write_text(json.dumps(identity), encoding="ascii")
    return path


def reload_pid_file(run_script: RunScript, pid_file: Path) -> subprocess.CompletedProcess[str]:
    return run_script("c2cwsgiutils_reload", "--pid-file", str(pid_file))


def assert_refused(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1
    assert result.stderr.startswith("c2cwsgiutils_reload: ")
    assert result.stderr.count("\n") == 1
    assert expected in result.stderr


def test_master_records_its_identity_beside_its_pid_file(start_server: StartServer) -> None:
    server = start_server(workers=1)
    pid = server.master_pid()
    identity = json.loads(Path(f"{server.pid_file}.master").read_text(encoding="ascii"))
    assert identity == {"pid": pid, "start_time": start_time(pid), "boot_id": BOOT_ID}


def test_master_removes_its_identity_file_when_it_stops(start_server: StartServer) -> None:
    server = start_server(workers=1)
    assert server.stop() == 0
    assert not server.pid_file.exists()
    assert not Path(f"{server.pid_file}.master").exists()


def test_reload_refuses_a_pid_file_without_its_identity_file(
    decoy: subprocess.Popen[str], tmp_path: Path, run_script: RunScript
) -> None:
    pid_file = write_pid_file(tmp_path / "app.pid", decoy.pid)
    result = reload_pid_file(run_script, pid_file)
    assert result.stderr == (
        f"c2cwsgiutils_reload: {pid_file}: process {decoy.pid} is not the gunicorn master started for "
        f"this pid file ({pid_file}.master is missing; stale pid file?)\n"
    )
    assert result.returncode == 1
    assert signals_received(decoy) == []


def test_reload_refuses_a_process_that_only_mentions_gunicorn(
    decoy: subprocess.Popen[str], start_server: StartServer, tmp_path: Path, run_script: RunScript
) -> None:
    server = start_server(workers=1)
    pid_file = write_pid_file(tmp_path / "app.pid", decoy.pid)
    shutil.copy(f"{server.pid_file}.master", f"{pid_file}.master")  # a real master's identity
    assert_refused(reload_pid_file(run_script, pid_file), f"names pid {server.master_pid()}")
    assert signals_received(decoy) == []


def test_reload_refuses_a_worker_of_the_master(
    start_server: StartServer, tmp_path: Path, run_script: RunScript
) -> None:
    # A worker's command line is gunicorn's own, so the old check let it through.
    server = start_server(workers=1)
    (worker,) = server.worker_pids()
    pid_file = write_pid_file(tmp_path / "app.pid", worker)
    shutil.copy(f"{server.pid_file}.master", f"{pid_file}.master")
    assert_refused(
        reload_pid_file(run_script, pid_file),
        f"process {worker} is not the gunicorn master started for this pid file "
        f"({pid_file}.master names pid {server.master_pid()}; stale pid file?)",
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"start_time": 1}, "it started at another time than the process"),
        ({"boot_id": "00000000-0000-0000-0000-000000000000"}, "written before the machine restarted"),
    ],
)
def test_reload_refuses_a_stale_identity(
    decoy: subprocess.Popen[str],
    tmp_path: Path,
    run_script: RunScript,
    change: dict[str, object],
    expected: str,
) -> None:
    identity = {"pid": decoy.pid, "start_time": start_time(decoy.pid), "boot_id": BOOT_ID, **change}
    pid_file = write_pid_file(tmp_path / "app.pid", decoy.pid, identity)
    assert_refused(reload_pid_file(run_script, pid_file), expected)
    assert signals_received(decoy) == []


def test_reload_signals_exactly_the_process_its_identity_describes(
    decoy: subprocess.Popen[str], tmp_path: Path, run_script: RunScript
) -> None:
    # The same files as above with the true start time and boot id: the refusals above are theirs.
    identity = {"pid": decoy.pid, "start_time": start_time(decoy.pid), "boot_id": BOOT_ID}
    pid_file = write_pid_file(tmp_path / "app.pid", decoy.pid, identity)
    assert reload_pid_file(run_script, pid_file).returncode == 0
    assert signals_received(decoy) == ["SIGHUP"]


def test_reload_refuses_an_identity_file_of_another_user(
    decoy: subprocess.Popen[str], tmp_path: Path, run_script: RunScript
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to give the identity file to another user")
    identity = {"pid": decoy.pid, "start_time": start_time(decoy.pid), "boot_id": BOOT_ID}
    pid_file = write_pid_file(tmp_path / "app.pid", decoy.pid, identity)
    os.chown(f"{pid_file}.master", 65534, 65534)
    assert_refused(reload_pid_file(run_script, pid_file), "belongs to another user than the process")
    assert signals_received(decoy) == []


def test_reload_refuses_a_dead_pid(tmp_path: Path, run_script: RunScript) -> None:
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    pid_file = write_pid_file(tmp_path / "app.pid", gone.pid)
    result = reload_pid_file(run_script, pid_file)
    assert result.stderr == (
        f"c2cwsgiutils_reload: {pid_file}: process {gone.pid} is not running (stale pid file?)\n"
    )
    assert result.returncode == 1


@pytest.mark.parametrize("content", ["", "-1\n", "0\n", "1_000\n", "twelve\n"])
def test_reload_refuses_a_pid_file_without_a_pid(tmp_path: Path, content: str, run_script: RunScript) -> None:
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(content, encoding="ascii")
    assert_refused(reload_pid_file(run_script, pid_file), f"{pid_file}: holds no pid")


def test_two_servers_reload_independently(start_server: StartServer, run_script: RunScript) -> None:
    first = start_server(workers=2)
    second = start_server(workers=2)
    assert first.pid_file != second.pid_file
    first_workers, second_workers = first.worker_pids(), second.worker_pids()

    assert reload(run_script, first).returncode == 0
    first_workers = wait_for_new_workers(first, first_workers)
    assert second.worker_pids() == second_workers

    assert reload(run_script, second).returncode == 0
    wait_for_new_workers(second, second_workers)
    assert first.worker_pids() == first_workers
    for server in (first, second):
        assert requests.get(server.url("/api/ping"), timeout=5).json() == {"pong": True}


def test_reload_a_gunicorn_started_without_the_run_command(
    tmp_path: Path, run_script: RunScript, example_app_ini: Path
) -> None:
    port = free_port()
    pid_file = tmp_path / "gunicorn.pid"
    env = clean_environ(
        {
            "C2CWSGIUTILS_CONFIG": str(example_app_ini),
            "SQLALCHEMY_URL": f"sqlite:///{tmp_path}/app.sqlite",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
            "C2CWSGIUTILS_PID_FILE": str(pid_file),
        }
    )
    command = [
        console_script("gunicorn"),
        "-c",
        "python:c2cwsgiutils.gunicorn_config",
        "c2cwsgiutils.wsgi_app:create_application()",
    ]
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not Path(f"{pid_file}.master").exists():
            assert process.poll() is None, (tmp_path / "log").read_text(encoding="utf-8")
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert json.loads(Path(f"{pid_file}.master").read_text(encoding="ascii"))["pid"] == process.pid
        log_before = (tmp_path / "log").read_text(encoding="utf-8")
        # Its hooks are those of c2cwsgiutils_run (the configuration file): it rolls.
        assert reload_pid_file(run_script, pid_file).returncode == 0
        log_after = (tmp_path / "log").read_text(encoding="utf-8")
        assert "Handling signal: ttin" in log_after, log_before
        assert "Handling signal: ttou" in log_after, log_before
    finally:
        process.terminate()
        process.wait(30)
    assert not Path(f"{pid_file}.master").exists()
