"""c2cwsgiutils_reload against a real gunicorn serving the example app."""

import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from c2cwsgiutils.acceptance.server import AppServer
from conftest import StartServer, request_in_flight, run_script


def reload(server: AppServer) -> subprocess.CompletedProcess[str]:
    return run_script("c2cwsgiutils_reload", env={"C2CWSGIUTILS_PID_FILE": str(server.pid_file)})


def wait_for_new_workers(server: AppServer, old: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if pids and not pids & old:
            return pids
        time.sleep(0.1)
    raise TimeoutError(f"workers not replaced: {old} -> {server.worker_pids()}")


def test_reload_replaces_every_worker(start_server: StartServer) -> None:
    server = start_server(workers=2)
    before = server.worker_pids()
    assert reload(server).returncode == 0
    after = wait_for_new_workers(server, before)
    assert len(after) == 2


def test_reload_lets_in_flight_requests_finish(start_server: StartServer) -> None:
    server = start_server(workers=1)
    with request_in_flight(server) as statuses:
        assert reload(server).returncode == 0
    assert statuses == [200]


def test_reload_under_load_drops_no_request(start_server: StartServer) -> None:
    server = start_server(workers=2)
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load(keep_alive: bool) -> None:
        session = requests.Session()
        while not stop.is_set():
            headers = {} if keep_alive else {"Connection": "close"}
            try:
                status = session.get(server.url("/api/ping"), headers=headers, timeout=10).status_code
                outcomes[str(status)] += 1
            except requests.RequestException as error:
                outcomes[type(error).__name__] += 1

    threads = [threading.Thread(target=load, args=(index % 2 == 0,)) for index in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for _ in range(2):
            before = server.worker_pids()
            assert reload(server).returncode == 0
            wait_for_new_workers(server, before)
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(outcomes) == {"200"}, outcomes
    assert outcomes["200"] > 100


def test_reload_without_pid_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_script("c2cwsgiutils_reload", "--pid-file", str(tmp_path / "none.pid"))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"c2cwsgiutils_reload: {tmp_path / 'none.pid'}: no such file; is c2cwsgiutils_run running?\n"
    )


def test_reload_refuses_a_pid_that_is_not_gunicorn(tmp_path: Path) -> None:
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
    result = run_script("c2cwsgiutils_reload", "--pid-file", str(pid_file))
    assert result.returncode == 1
    assert "is not gunicorn" in result.stderr
