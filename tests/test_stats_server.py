"""The metrics of the example app under the real c2cwsgiutils_run, with 4 gunicorn workers."""

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, free_port
from c2cwsgiutils.acceptance.udp import UdpReceiver
from testing.fixtures import StartServer

pytestmark = [pytest.mark.server]

STATSD_LINE = re.compile(
    # A name: any characters but statsd's delimiters and line breaks (the original's rule).
    r"(?P<name>[^:|\n]+):(?P<value>-?[0-9]+(?:\.[0-9]+)?)\|(?P<type>ms|g|c)"
    r"(?:\|#(?P<tags>[^,|#:\s]+:[^,|#\s]+(?:,[^,|#:\s]+:[^,|#\s]+)*))?"
)


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def _received_after(receiver: UdpReceiver, seen: int, text: bytes) -> bool:
    return any(text in data for data in receiver.received()[seen:])


def _ping_on_new_connections(server: AppServer, count: int) -> set[str]:
    """Send ``count`` pings, 16 at a time on new connections, so that several workers take some."""

    def ping(_: int) -> str:
        response = requests.get(server.url("/api/ping"), timeout=10, headers={"Connection": "close"})
        assert response.status_code == 200
        return response.headers["X-Worker-Pid"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return set(pool.map(ping, range(count)))


def test_stats_json_counts_every_request_of_every_worker_once(start_server: StartServer) -> None:
    server = start_server(env={"STATS_VIEW": "1"}, workers=4)
    # Every worker has loaded the app (and subscribed to the stats.json channel).
    _wait(
        lambda: requests.get(server.url("/c2c/stats.json"), timeout=10).headers["X-Stats-Processes"] == "4",
        timeout=30,
    )
    requests.get(server.url("/c2c/stats.json?reset=1"), timeout=10)
    # On a busy machine one worker may take a whole batch: send more until several took some.
    pids: set[str] = set()
    sent = 0
    while len(pids) < 2 and sent < 300:
        pids |= _ping_on_new_connections(server, 60)
        sent += 60
    assert len(pids) > 1, "the requests all went to one worker: the test proves nothing"

    response = requests.get(server.url("/c2c/stats.json"), timeout=10)
    assert response.headers["X-Stats-Processes"] == "4"
    timers = response.json()["timers"]
    assert timers["route/GET/ping/200"]["nb"] == sent
    assert timers["render/GET/ping/200"]["nb"] == sent
    assert set(timers["route/GET/ping/200"]) == {"nb", "avg_ms", "min_ms", "max_ms"}

    assert (
        requests.get(server.url("/c2c/stats.json?reset=1"), timeout=10).json()["timers"][
            "route/GET/ping/200"
        ]["nb"]
        == sent
    )
    assert (
        "route/GET/ping/200" not in requests.get(server.url("/c2c/stats.json"), timeout=10).json()["timers"]
    )


def test_statsd_lines_are_valid_and_each_timer_fits_in_its_request(
    start_server: StartServer, udp_receiver: UdpReceiver
) -> None:
    server = start_server(
        env={"STATSD_ADDRESS": udp_receiver.address, "STATSD_PREFIX": "app", "STATSD_TAG_ENV": "test"},
        workers=4,
    )
    for index in range(15):
        seen = len(udp_receiver.received())
        start = time.perf_counter()
        response = requests.get(server.url("/api/ping"), timeout=10)
        elapsed_ms = (time.perf_counter() - start) * 1000
        assert response.status_code == 200
        # The sender flushes every 0.1 s: wait for this request's lines.
        _wait(partial(_received_after, udp_receiver, seen, b"app.route.GET.ping.200:"))
        lines = [
            line
            for data in udp_receiver.received()[seen:]
            for line in data.decode().split("\n")
            if line.startswith(("app.route.GET.ping.200:", "app.render.GET.ping.200:"))
        ]
        assert len(lines) == 2, (index, lines)
        for line in lines:
            match = STATSD_LINE.fullmatch(line)
            assert match is not None, line
            assert match["type"] == "ms"
            assert 0 <= float(match["value"]) <= elapsed_ms, (line, elapsed_ms)
            assert match["tags"] == "env:test"
    for data in udp_receiver.received():
        assert len(data) <= 1432
        for line in data.decode().split("\n"):
            assert STATSD_LINE.fullmatch(line), line


def test_a_statsd_that_does_not_resolve_costs_a_warning_not_a_request(start_server: StartServer) -> None:
    server = start_server(env={"STATSD_ADDRESS": "statsd.invalid:8125"}, workers=1)
    for _ in range(5):
        assert requests.get(server.url("/api/ping"), timeout=10).status_code == 200
    _wait(lambda: "cannot resolve the statsd address statsd.invalid:8125" in server.log())
    assert server.log().count("cannot resolve the statsd address") == 1


def _promtool() -> str:
    found = shutil.which("promtool") or (
        "/usr/local/bin/promtool" if os.path.exists("/usr/local/bin/promtool") else None
    )
    if found is None:
        pytest.fail("promtool is needed (Debian package prometheus; .ci/run installs it)", pytrace=False)
    return found


def _scrape(server: AppServer) -> str:
    response = requests.get(server.url("/c2c/metrics"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run(
        [_promtool(), "check", "metrics"],
        input=response.text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return response.text


def _ping_count(text: str) -> float:
    return sum(
        float(value)
        for value in re.findall(
            r'^c2cwsgiutils_request_duration_seconds_count\{method="GET",route="ping",status="200"\} (\S+)$',
            text,
            re.MULTILINE,
        )
    )


def test_prometheus_metrics_sum_every_worker_also_after_one_was_killed(start_server: StartServer) -> None:
    server = start_server(env={"C2C_PROMETHEUS": "1"}, workers=4)
    # Every worker has loaded the app (a worker still loading it takes no request).
    _wait(
        lambda: len(set(re.findall(r"c2cwsgiutils_app ready in process (\d+)", server.log()))) == 4,
        timeout=30,
    )
    pids = _ping_on_new_connections(server, 40)
    assert len(pids) > 1
    text = _scrape(server)
    assert _ping_count(text) == 40
    assert 'process_resident_memory_bytes{pid="' in text
    # Every gunicorn process's own metrics: the master (the run command's process) and the workers.
    for pid in (server.master_pid(), *server.worker_pids()):
        assert f'process_resident_memory_bytes{{pid="{pid}"}}' in text
    assert "python_info{" in text

    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 4)
    _ping_on_new_connections(server, 10)
    assert _ping_count(_scrape(server)) == 50


def test_prometheus_multiprocess_directory_is_made_by_the_run_command(start_server: StartServer) -> None:
    server = start_server(env={"C2C_PROMETHEUS": "1"}, workers=2)
    _ping_on_new_connections(server, 3)
    master = server.master_pid()
    # The master runs gunicorn in the run command's process (no exec): its /proc environ is the
    # one it started with; the directory is the default one of its pid, with the workers' files.
    directory = Path(tempfile.gettempdir()) / f"c2cwsgiutils-prometheus-{os.getuid()}" / str(master)
    files = {path.name for path in directory.iterdir() if path.suffix == ".db"}
    assert any(name.endswith(f"_{pid}.db") for name in files for pid in server.worker_pids())


def test_prometheus_port_of_its_own_is_served_by_the_master(start_server: StartServer) -> None:
    port = free_port()
    server = start_server(env={"C2C_PROMETHEUS_PORT": str(port)}, workers=2)
    _ping_on_new_connections(server, 5)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert _ping_count(text) == 5
    assert f'process_resident_memory_bytes{{pid="{server.master_pid()}"}}' in text
    assert "process_smap_" not in text  # the memory maps only with prometheus.start(), as upstream
    assert requests.get(server.url("/c2c/metrics"), timeout=10).status_code == 404  # only the port


def test_prometheus_port_of_its_own_asks_for_the_secret(start_server: StartServer) -> None:
    port = free_port()
    server = start_server(env={"C2C_PROMETHEUS_PORT": str(port), "C2C_PROMETHEUS_SECRET": "pr0m"}, workers=1)
    _ping_on_new_connections(server, 2)
    url = f"http://127.0.0.1:{port}/metrics"
    for refused in ({}, {"X-API-Key": "wrong"}):
        answer = requests.get(url, headers=refused, timeout=10)
        assert (answer.status_code, answer.json()["status"]) == (403, 403)
        assert "c2cwsgiutils" not in answer.text
    assert _ping_count(requests.get(url, headers={"X-API-Key": "pr0m"}, timeout=10).text) == 2
    assert _ping_count(requests.get(f"{url}?secret=pr0m", timeout=10).text) == 2
