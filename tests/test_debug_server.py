"""The debug views under the real c2cwsgiutils_run: stacks and memory gathered from every gunicorn worker.

In-process: tests/unit/test_debug.py.
"""

import re
import threading
import time
from collections.abc import Callable

import requests

from testing.fixtures import StartServer

KEY = "d3bug"
HEADERS = {"X-API-Key": KEY}


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_stacks_come_from_every_worker_of_a_real_gunicorn(start_server: StartServer) -> None:
    server = start_server(env={"DEBUG_VIEW_SECRET": KEY}, workers=4)
    # Every worker has loaded the app, so every one listens to the broadcast.
    _wait(lambda: len(set(re.findall(r"c2cwsgiutils_app ready in process (\d+)", server.log()))) == 4)
    response = requests.get(server.url("/c2c/debug/stacks"), headers=HEADERS, timeout=20)
    processes = response.json()["processes"]
    assert {process["pid"] for process in processes} == server.worker_pids()
    assert all(process["threads"] for process in processes)
    text = requests.get(server.url("/c2c/debug/stacks?format=text"), headers=HEADERS, timeout=20).text
    assert {
        int(pid) for pid in re.findall(r"^# host \S+, pid (\d+), thread MainThread", text, re.MULTILINE)
    } == (server.worker_pids())


def test_a_worker_busy_with_a_request_still_shows_its_stack(start_server: StartServer) -> None:
    server = start_server(env={"DEBUG_VIEW_SECRET": KEY}, workers=2)
    _wait(lambda: len(set(re.findall(r"c2cwsgiutils_app ready in process (\d+)", server.log()))) == 2)
    with requests.Session() as sleeper:
        thread = threading.Thread(
            target=lambda: sleeper.get(server.url("/c2c/debug/sleep?time=3"), headers=HEADERS, timeout=20)
        )
        thread.start()
        try:

            def sleeping() -> bool:
                text = requests.get(
                    server.url("/c2c/debug/stacks?format=text"), headers=HEADERS, timeout=20
                ).text
                return "time.sleep(seconds)" in text

            _wait(sleeping, timeout=3)
        finally:
            thread.join()


def test_memory_comes_from_every_worker_of_a_real_gunicorn(start_server: StartServer) -> None:
    server = start_server(env={"DEBUG_VIEW_SECRET": KEY}, workers=2)
    _wait(lambda: len(set(re.findall(r"c2cwsgiutils_app ready in process (\d+)", server.log()))) == 2)
    processes = requests.get(server.url("/c2c/debug/memory?limit=3"), headers=HEADERS, timeout=60).json()[
        "processes"
    ]
    assert {process["pid"] for process in processes} == server.worker_pids()
    assert all(len(process["types"]) == 3 for process in processes)
