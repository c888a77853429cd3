"""Long load runs with wrk against the example app (``make load``, not part of ``make test``).

The app runs under c2cwsgiutils_run with several workers on the PostgreSQL primary and replica
and Redis, as in production. wrk sends the mix of mix.lua for 60 s on 64 connections. The figures
of the last run are in docs/reliability.md.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, console_script
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import EXAMPLE_APP_INI

WORKERS = 3
CONNECTIONS = 64
SECONDS = int(os.environ.get("C2C_LOAD_SECONDS", "60"))
MIX = Path(__file__).parent / "mix.lua"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclasses.dataclass
class WrkResult:
    """What wrk reports: requests, their rate, socket errors and non-2xx/3xx answers."""

    output: str
    requests: int
    rate: float
    socket_errors: dict[str, int]
    non_2xx: int


def wrk(url: str, seconds: int, connections: int = CONNECTIONS, timeout: int = 10) -> WrkResult:
    """Run wrk on ``url`` with the route mix; parse its summary (``timeout``: seconds per request)."""
    command = shutil.which("wrk")
    if command is None:
        pytest.fail("wrk is needed: apt-get install wrk", pytrace=False)
    output = subprocess.run(
        [
            command,
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{timeout}s",
            "-s",
            str(MIX),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    total = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    assert total, output
    assert rate, output
    return WrkResult(
        output=output,
        requests=int(total.group(1)),
        rate=float(rate.group(1)),
        socket_errors=dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
        if errors
        else {},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def rss_kib(pid: int) -> int:
    """Return the resident memory of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1))


@pytest.fixture
def app(postgres_url: str, postgres_replica_url: str) -> Iterator[AppServer]:
    env = {
        "SQLALCHEMY_URL": postgres_url,
        "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
        "C2C_REDIS_URL": REDIS_URL,
        "C2C_BROADCAST_PREFIX": f"load_{uuid.uuid4().hex}",
        "LOG_VIEW_SECRET": "load-secret",
        "STATS_VIEW": "1",
    }
    server = AppServer(EXAMPLE_APP_INI, env=env, workers=WORKERS)
    try:
        server.start(timeout=120)  # the machine may still be busy with the previous run
        requests.post(server.url("/api/hello"), json={"value": f"load-{uuid.uuid4()}"}, timeout=10)
        yield server
    finally:
        server.close()


def test_a_minute_at_64_connections_without_errors_or_memory_growth(app: AppServer) -> None:
    wrk(app.base_url, 15)  # warm-up: pools, caches and lazy imports filled
    workers = app.worker_pids()
    before = {pid: rss_kib(pid) for pid in workers}
    result = wrk(app.base_url, SECONDS)
    after = {pid: rss_kib(pid) for pid in workers}
    print(result.output)
    print({pid: (before[pid], after[pid]) for pid in workers})
    assert app.worker_pids() == workers, "a worker was replaced during the run"
    assert result.socket_errors == {}, result.output
    assert result.non_2xx == 0, result.output
    for pid in workers:
        assert after[pid] < before[pid] * 1.10, f"worker {pid}: {before[pid]} KiB, then {after[pid]} KiB"
    assert "Traceback" not in app.log()


def test_five_reloads_during_a_minute_of_load_fail_no_request(app: AppServer) -> None:
    reload_script = console_script("c2cwsgiutils_reload")
    reloads: list[subprocess.CompletedProcess[str]] = []

    def reload_five_times() -> None:
        for _ in range(5):
            time.sleep(SECONDS / 6)
            old = app.worker_pids()
            reloads.append(
                subprocess.run(
                    [reload_script, "--pid-file", str(app.pid_file)],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=150,  # c2cwsgiutils_reload's own --timeout is 120 s
                )
            )
            wait_until(lambda: not (app.worker_pids() & old), timeout=30, what="the workers are replaced")  # noqa: B023 (called here, in the loop)

    reloader = threading.Thread(target=reload_five_times)
    reloader.start()
    # The reload rolls (the new workers load the app before the old ones stop): no request waits
    # for a boot, so wrk's usual 10 s timeout holds.
    result = wrk(app.base_url, SECONDS)
    reloader.join()
    print(result.output)
    assert [reload.returncode for reload in reloads] == [0] * 5, [reload.stderr for reload in reloads]
    assert result.socket_errors == {}, result.output
    assert result.non_2xx == 0, result.output
    assert "Traceback" not in app.log()
