"""Faults around the example app under c2cwsgiutils_run with several workers (docs/reliability.md).

Each test breaks one thing the app depends on (statsd, syslog, Redis, the replica, the primary, a
worker) and checks that the app keeps answering its other routes, then that it recovers on its
own. PostgreSQL clusters are the shared ones (stopped briefly, always started again in
``finally``); Redis is a private redis-server, so that the shared one stays up for other tests.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, console_script
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import wait_until
from testing import health_check_app
from testing.fixtures import (
    EXAMPLE_APP_INI,
    RedisServer,
    StartServer,
    postgres_cluster,
    wait_for_postgres,
)

WORKERS = 3
# The longest a request of the app may take while something it does not need is broken.
QUICK = 2.0


def closed_udp_port() -> int:
    """Return a UDP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(server: AppServer, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    """GET on a new connection each time, so that successive requests reach different workers."""
    return requests.get(server.url(path), headers={"Connection": "close", **(headers or {})}, timeout=10)


def assert_answers_its_routes(server: AppServer, rounds: int = 3 * WORKERS) -> None:
    """Check that the app answers its own routes correctly and quickly, each on a new connection."""
    for _ in range(rounds):
        started = time.monotonic()
        ping = get(server, "/api/ping")
        assert (ping.status_code, ping.json()) == (200, {"pong": True})
        error = get(server, "/api/error?status=400")
        assert error.status_code == 400
        assert error.headers["Content-Type"].startswith("application/json")
        alive = get(server, "/c2c/health")
        assert (alive.status_code, alive.json()) == (200, {"status": 200})
        assert time.monotonic() - started < QUICK * 3


def by_worker(server: AppServer, path: str, value: str = "", timeout: float = 20) -> dict[int, object]:
    """GET ``path`` until every worker has answered; return each worker's last answer (its ``value`` key)."""
    answers: dict[int, object] = {}
    workers = server.worker_pids()
    deadline = time.monotonic() + timeout
    while set(answers) != workers:
        assert time.monotonic() < deadline, f"workers {workers - set(answers)} did not answer {path}"
        response = get(server, path)
        assert response.status_code == 200, response.text
        answers[int(response.headers["X-Worker-Pid"])] = response.json()[value] if value else response.json()
    return answers


def warnings_of(server: AppServer, text: str) -> int:
    return server.log().count(text)


# statsd and syslog: an address that does not resolve, a port where nothing listens, a receiver
# that goes away. Each costs at most one warning a minute per process, never a request.

FAULTS = {
    "statsd unresolvable": ({"STATSD_ADDRESS": "statsd.invalid:8125"}, "cannot resolve the statsd address"),
    "statsd port closed": ({"STATSD_ADDRESS": "127.0.0.1:{closed}"}, "c2cwsgiutils stats"),
    "syslog unresolvable": (
        {"LOG_TYPE": "console,syslog", "LOG_HOST": "syslog.invalid", "LOG_PORT": "514"},
        "cannot send to syslog at syslog.invalid",
    ),
    "syslog port closed": (
        {"LOG_TYPE": "console,syslog", "LOG_HOST": "127.0.0.1", "LOG_PORT": "{closed}"},
        "cannot send to syslog",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_broken_statsd_or_syslog_costs_no_request(start_server: StartServer, fault: str) -> None:
    env, warning = FAULTS[fault]
    closed = str(closed_udp_port())
    server = start_server(
        env={key: value.format(closed=closed) for key, value in env.items()}, workers=WORKERS
    )
    assert_answers_its_routes(server)
    time.sleep(0.5)  # the senders run every 0.1 s: let them fail a few times
    assert_answers_its_routes(server)
    # Rate-limited: one warning a minute per process at the most: each worker, the master, and
    # c2cwsgiutils_run with its check of the app (which loads it, metrics included). Far fewer
    # than the requests made (2 x 9 rounds of 3).
    assert warnings_of(server, warning) <= WORKERS + 3, server.log()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("target", ["statsd", "syslog"])
def test_statsd_or_syslog_receiver_that_goes_away_costs_no_request(
    start_server: StartServer, target: str
) -> None:
    receiver = UdpReceiver().start()  # closed by hand, mid-test
    env = (
        {"STATSD_ADDRESS": receiver.address}
        if target == "statsd"
        else {"LOG_TYPE": "console,syslog", "LOG_HOST": receiver.host, "LOG_PORT": str(receiver.port)}
    )
    server = start_server(env=env, workers=WORKERS)
    try:
        get(server, "/api/ping")
        receiver.wait_for(lambda datagram: b"ping" in datagram, timeout=10)
    finally:
        receiver.close()
    assert_answers_its_routes(server)
    time.sleep(0.5)
    assert_answers_its_routes(server)
    assert "Traceback" not in server.log()


# Redis, the broadcast's transport between workers and containers.


def test_log_levels_reach_every_worker_again_after_redis_restarted(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    env = {
        "C2C_REDIS_URL": redis_server.url,
        "C2C_REDIS_TIMEOUT": "1",
        "C2C_BROADCAST_PREFIX": f"faults_{uuid.uuid4().hex}",
        "LOG_VIEW_SECRET": "s3cret",
    }
    server = start_server(env=env, workers=WORKERS)
    level = "/c2c/logging/level?name=c2cwsgiutils_app"
    key = {"X-API-Key": "s3cret"}

    def set_level(value: str, statuses: tuple[int, ...] = (200,)) -> None:
        started = time.monotonic()
        response = get(server, f"{level}&level={value}", headers=key)
        assert response.status_code in statuses
        assert response.json()["level"] == value
        assert time.monotonic() - started < QUICK

    def every_worker_has(value: str) -> bool:
        answers = {}
        for _ in range(6 * WORKERS):
            response = get(server, level, headers=key)
            answers[int(response.headers["X-Worker-Pid"])] = response.json()["level"]
        return set(answers) == server.worker_pids() and set(answers.values()) == {value}

    set_level("DEBUG")
    wait_until(lambda: every_worker_has("DEBUG"), timeout=10, what="every worker gets DEBUG through Redis")
    redis_server.stop()
    try:
        set_level("WARNING", (202,))  # applied by the worker that got it and queued, without waiting
        assert_answers_its_routes(server)
    finally:
        redis_server.start()
    workers = server.worker_pids()
    set_level("ERROR", (200, 202))  # 202 until the listener of the worker that got it is back
    wait_until(
        lambda: every_worker_has("ERROR"), timeout=20, what="every worker gets ERROR once Redis is back"
    )
    assert server.worker_pids() == workers  # no worker was restarted for it
    assert "Traceback" not in server.log()


# PostgreSQL: the replica, then the primary, stopped and started again.


@pytest.fixture
def db_server(start_server: StartServer, postgres_url: str, postgres_replica_url: str) -> AppServer:
    env = {
        "SQLALCHEMY_URL": postgres_url,
        "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
        "C2C_DB_REPLICA_RETRY": "500ms",
    }
    server = start_server(env=env, workers=WORKERS)
    response = requests.post(server.url("/api/hello"), json={"value": f"faults-{uuid.uuid4()}"}, timeout=10)
    assert response.status_code == 201  # the level 2 DB check wants a row
    return server


def test_reads_fall_back_to_the_primary_while_the_replica_is_down_then_return(
    db_server: AppServer, postgres_replica_url: str
) -> None:
    server = db_server
    assert set(by_worker(server, "/api/hello", "in_recovery").values()) == {True}
    try:
        postgres_cluster("replica", "stop")
        started = time.monotonic()
        assert set(by_worker(server, "/api/hello", "in_recovery").values()) == {False}
        assert time.monotonic() - started < QUICK * 3 * WORKERS
        assert_answers_its_routes(server)
    finally:
        postgres_cluster("replica", "start")
        wait_for_postgres(postgres_replica_url)
    workers = server.worker_pids()
    wait_until(
        lambda: set(by_worker(server, "/api/hello", "in_recovery").values()) == {True},
        timeout=20,
        what="every worker reads from the replica again",
    )
    assert server.worker_pids() == workers


def test_primary_down_fails_fast_in_json_and_everything_recovers_on_its_own(
    db_server: AppServer, postgres_url: str
) -> None:
    server = db_server
    workers = server.worker_pids()
    health = "/c2c/health_check?max_level=2"
    assert get(server, health).status_code == 200
    try:
        postgres_cluster("main", "stop")
        for _ in range(2 * WORKERS):
            started = time.monotonic()
            response = requests.post(
                server.url("/api/hello"),
                json={"value": f"down-{uuid.uuid4()}"},
                headers={"Connection": "close"},
                timeout=30,
            )
            assert time.monotonic() - started < QUICK
            assert response.status_code in {500, 503}
            assert response.headers["Content-Type"].startswith("application/json")
            assert "Traceback" not in response.text
        report = get(server, health)
        assert report.status_code == 500
        assert any(name.startswith("db_engine") for name in report.json()["failures"]), report.json()
        assert_answers_its_routes(server)
    finally:
        postgres_cluster("main", "start")
        wait_for_postgres(postgres_url)

    def writes_work_on_every_worker() -> bool:
        answered = set()
        for _ in range(4 * WORKERS):
            response = requests.post(
                server.url("/api/hello"),
                json={"value": f"back-{uuid.uuid4()}"},
                headers={"Connection": "close"},
                timeout=10,
            )
            if response.status_code != 201:
                return False
            answered.add(int(response.headers["X-Worker-Pid"]))
        return answered == workers

    wait_until(
        writes_work_on_every_worker,
        timeout=30,
        what="writes succeed on every worker once the primary is back",
    )
    wait_until(
        lambda: get(server, health).status_code == 200, timeout=30, what="the health check passes again"
    )
    assert server.worker_pids() == workers  # recovered without a worker restart


# A URL health check whose server accepts the connection and never answers.


@pytest.fixture
def hanging_server() -> Iterator[str]:
    """Return the URL of a TCP server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hangs"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_url_check_whose_server_hangs_fails_by_its_timeout(
    start_server: StartServer, hanging_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ini = tmp_path_factory.mktemp("hang") / "hang.ini"
    ini.write_text(health_check_app.INI.format(settings=f"health.url = {hanging_server}"), encoding="utf-8")
    server = start_server(env={"PYTHONPATH": str(EXAMPLE_APP_INI.parents[2])}, config_file=ini, workers=2)
    with ThreadPoolExecutor(3) as executor:
        started = time.monotonic()
        reports = list(executor.map(lambda _: get(server, "/c2c/health_check"), range(3)))
        alive = get(server, "/c2c/health")  # while the checks hang
        elapsed = time.monotonic() - started
    assert alive.status_code == 200
    for report in reports:
        assert report.status_code == 500
        assert report.json()["failures"][hanging_server]["message"].startswith("timed out after 1 s")
    assert elapsed < 1 + QUICK


# A worker killed with SIGKILL while it serves a request.


SLEEP = 10  # the longest /api/sleep allows: the requests are still in flight on a busy machine


def test_a_worker_killed_mid_request_is_replaced_and_other_requests_are_unaffected(
    start_server: StartServer,
) -> None:
    # Enough threads that no request waits for one, whichever worker accepts it.
    server = start_server(env={"GUNICORN_THREADS": str(3 * WORKERS)}, workers=WORKERS)
    workers = server.worker_pids()
    markers = [f"kill-{uuid.uuid4()}" for _ in range(3 * WORKERS)]
    outcomes: dict[str, int | str] = {}

    def sleep(marker: str) -> None:
        try:
            response = requests.get(
                server.url(f"/api/sleep?seconds={SLEEP}"),
                headers={"X-Request-ID": marker, "Connection": "close"},
                timeout=30,
            )
            outcomes[marker] = response.status_code
        except requests.RequestException as error:
            outcomes[marker] = type(error).__name__

    threads = [threading.Thread(target=sleep, args=(marker,)) for marker in markers]
    first_sent = time.monotonic()
    for thread in threads:
        thread.start()
        time.sleep(0.15)  # a burst would all be accepted by the first worker to wake up

    def pids_of_markers() -> dict[str, int]:
        found = re.findall(r"\[c2cwsgiutils_app\.views\]\[(\d+)\]\[([^\]]+)\] sleeping", server.log())
        by_marker = {marker: int(pid) for pid, marker in found}
        return by_marker if set(by_marker) >= set(markers) else {}

    serving = wait_until(pids_of_markers, timeout=10, what="every request reaches a worker")
    victim = min(serving.values())  # any worker with a request in flight
    others = {marker for marker, pid in serving.items() if pid != victim}
    assert others, f"every request went to worker {victim}; cannot tell the others apart"
    # Every request must still be in flight when the worker dies, or the victim's could be done.
    assert time.monotonic() - first_sent < SLEEP - 1, "the requests took too long to reach the workers"
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join()
    assert {outcomes[marker] for marker in others} == {200}, outcomes
    assert all(outcomes[marker] != 200 for marker in set(markers) - others), outcomes
    replacement = wait_until(
        lambda: server.worker_pids() - workers, timeout=20, what="the master replaces the worker"
    )
    assert len(server.worker_pids()) == WORKERS
    assert victim not in server.worker_pids()
    assert replacement
    assert_answers_its_routes(server)


# c2cwsgiutils_reload: every request is answered (tests/test_reload.py, acceptance_tests/load), but
# how long do they wait?


def test_a_reload_never_leaves_the_app_without_a_ready_worker(start_server: StartServer) -> None:
    server = start_server(workers=WORKERS)
    latencies: list[float] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                assert session.get(server.url("/api/ping"), timeout=60).status_code == 200
                latencies.append(time.monotonic() - started)

    with ThreadPoolExecutor(4) as executor:
        clients = [executor.submit(client) for _ in range(4)]
        time.sleep(1)
        old = server.worker_pids()
        result = subprocess.run(
            [console_script("c2cwsgiutils_reload"), "--pid-file", str(server.pid_file)],
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        wait_until(lambda: not (server.worker_pids() & old), timeout=30, what="the old workers are gone")
        time.sleep(1)
        stop.set()
        for future in clients:
            future.result()
    assert max(latencies) < 1.0, f"a request waited {max(latencies):.1f} s"
