"""Read-only maintenance and request.dbsession in the example app, under the real c2cwsgiutils_run.

Several gunicorn workers on the local primary (5432) and replica (5433): the switch is flipped
during a load run, reaches every worker without a restart, and is followed by workers started
after it (a reload) and by another server sharing the same Redis (another container).
"""

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, Self

import psycopg
import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from testing.fixtures import Load, RunScript, StartServer

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.replica, pytest.mark.redis]

SECRET = "maintenance-secret"  # noqa: S105
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def db_env(postgres_url: str, postgres_replica_url: str) -> dict[str, str]:
    return {
        "SQLALCHEMY_URL": postgres_url,
        "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
        "DB_MAINTENANCE_SECRET": SECRET,
        "C2C_DB_MAINTENANCE_RETRY_AFTER": "30s",
    }


def unique() -> str:
    return f"s-{uuid.uuid4().hex[:20]}"


def primary_has(postgres_url: str, value: str) -> bool:
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT count(*) FROM hello WHERE value = %s", (value,)).fetchone()
    return row == (1,)


def switch(server: AppServer, readonly: bool) -> dict[str, Any]:
    response = requests.post(
        server.url(f"/c2c/db/maintenance?readonly={str(readonly).lower()}"),
        headers={"X-API-Key": SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states_by_worker(server: AppServer, timeout: float = 20) -> dict[int, bool]:
    """Ask the state until every live worker has answered (new connections spread over them)."""
    states: dict[int, bool] = {}
    deadline = time.monotonic() + timeout
    while not server.worker_pids() <= states.keys():
        assert time.monotonic() < deadline, f"not every worker answered: {states} of {server.worker_pids()}"
        response = requests.get(
            server.url("/c2c/db/maintenance"),
            headers={"X-API-Key": SECRET, "Connection": "close"},
            timeout=10,
        )
        states[int(response.headers["X-Worker-Pid"])] = response.json()["readonly"]
    return {pid: state for pid, state in states.items() if pid in server.worker_pids()}


def wait_for_every_worker(server: AppServer, readonly: bool, timeout: float = 20) -> set[int]:
    """Wait until every live worker reports ``readonly``; return their pids."""
    deadline = time.monotonic() + timeout
    while True:
        states = states_by_worker(server)
        if all(state is readonly for state in states.values()):
            return set(states)
        assert time.monotonic() < deadline, f"workers not all readonly={readonly}: {states}"
        time.sleep(0.1)


class Writer:
    """A client posting a new greeting through request.dbsession in a loop, in a thread."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.outcomes: Counter[str] = Counter()
        self.retry_after: set[str] = set()
        self.committed: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                value = unique()
                try:
                    response = session.post(self.server.url(f"/api/greetings?value={value}"), timeout=10)
                    outcome = str(response.status_code)
                except requests.RequestException as error:
                    outcome, response = type(error).__name__, None
                with self._lock:
                    self.outcomes[outcome] += 1
                    if response is not None and response.status_code == 503:
                        self.retry_after.add(response.headers.get("Retry-After", ""))
                        assert response.json()["status"] == 503
                    if outcome == "201":
                        self.committed.append(value)
                time.sleep(0.01)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.outcomes)

    def wait_for(self, status: str, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` more answers with ``status`` came."""
        target = self.snapshot()[status] + count
        deadline = time.monotonic() + timeout
        while self.snapshot()[status] < target:
            assert time.monotonic() < deadline, f"waiting for {count} x {status}: {self.snapshot()}"
            time.sleep(0.02)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reads_by_worker(server: AppServer, count: int = 30) -> dict[int, list[Any]]:
    """GET the greetings on new connections; return (status, in_recovery) by worker."""
    seen: dict[int, list[Any]] = {}
    for _ in range(count):
        response = requests.get(server.url("/api/greetings"), headers={"Connection": "close"}, timeout=10)
        seen.setdefault(int(response.headers["X-Worker-Pid"]), []).append(
            (response.status_code, response.json().get("in_recovery"))
        )
    return seen


def test_switch_during_a_load_run(
    start_server: StartServer, db_env: dict[str, str], postgres_url: str
) -> None:
    server = start_server(env=db_env, workers=3)
    workers = wait_for_every_worker(server, readonly=False)
    with Load(server.url("/api/greetings"), clients=4) as load, Writer(server) as writer:
        writer.wait_for("201", 5)
        load.wait_for_requests(20)

        assert switch(server, True)["readonly"] is True
        assert wait_for_every_worker(server, readonly=True) == workers
        writer.wait_for("503", 10)
        load.wait_for_requests(50)
        during = reads_by_worker(server)
        assert during.keys() == workers
        assert {outcome for outcomes in during.values() for outcome in outcomes} == {(200, True)}
        assert writer.retry_after == {"30"}
        refused_at = writer.snapshot()

        switch(server, False)
        wait_for_every_worker(server, readonly=False)
        writer.wait_for("201", 10)
    assert set(load.outcomes) == {"200"}, load.outcomes
    assert set(writer.outcomes) == {"201", "503"}, writer.outcomes
    assert refused_at["503"] >= 10
    assert server.worker_pids() == workers  # no restart
    # What was answered 201 is on the primary: committed with the request.
    assert all(primary_has(postgres_url, value) for value in writer.committed[-10:])


def test_workers_started_after_the_switch_follow_it(
    start_server: StartServer, db_env: dict[str, str], run_script: RunScript
) -> None:
    server = start_server(env=db_env, workers=2)
    before = wait_for_every_worker(server, readonly=False)
    switch(server, True)
    wait_for_every_worker(server, readonly=True)
    assert (
        run_script("c2cwsgiutils_reload", env={"C2CWSGIUTILS_PID_FILE": str(server.pid_file)}).returncode == 0
    )
    deadline = time.monotonic() + 30
    while server.worker_pids() & before or len(server.worker_pids()) < 2:
        assert time.monotonic() < deadline, "workers not replaced"
        time.sleep(0.1)
    assert set(states_by_worker(server).values()) == {True}
    response = requests.post(server.url(f"/api/greetings?value={unique()}"), timeout=10)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_another_container_on_the_same_redis_follows(
    start_server: StartServer, db_env: dict[str, str], redis_prefix: str
) -> None:
    env = {**db_env, "C2C_REDIS_URL": REDIS_URL, "C2C_BROADCAST_PREFIX": redis_prefix}
    first = start_server(env=env, workers=2)
    second = start_server(env=env, workers=2)
    switch(first, True)
    wait_for_every_worker(second, readonly=True)
    assert requests.post(second.url(f"/api/greetings?value={unique()}"), timeout=10).status_code == 503
    # A container started during the maintenance reads the stored state from Redis.
    third = start_server(env=env, workers=2)
    assert set(states_by_worker(third).values()) == {True}
    switch(second, False)
    wait_for_every_worker(first, readonly=False)
    wait_for_every_worker(third, readonly=False)
    assert requests.post(third.url(f"/api/greetings?value={unique()}"), timeout=10).status_code == 201


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A broadcast prefix of this test alone, its Redis keys removed afterwards."""
    prefix = f"c2c_test_maintenance_{uuid.uuid4().hex[:8]}"
    yield prefix
    keys = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "--scan", "--pattern", f"{prefix}*"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if keys:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "DEL", *keys], capture_output=True, check=False)


# request.dbsession in the example app


def test_dbsession_commits_with_the_request_and_reads_from_the_replica(
    start_server: StartServer, db_env: dict[str, str], postgres_url: str
) -> None:
    server = start_server(env=db_env, workers=2)
    value = unique()
    response = requests.post(server.url(f"/api/greetings?value={value}"), timeout=10)
    assert response.status_code == 201
    assert response.json()["in_recovery"] is False
    assert primary_has(postgres_url, value)
    deadline = time.monotonic() + 10
    while True:  # the replica replays the commit within milliseconds
        listed = requests.get(server.url("/api/greetings"), timeout=10).json()
        assert listed["in_recovery"] is True
        if value in listed["values"]:
            break
        assert time.monotonic() < deadline, "the greeting did not reach the replica"
        time.sleep(0.05)


def test_dbsession_rolls_back_when_the_view_fails(
    start_server: StartServer, db_env: dict[str, str], postgres_url: str
) -> None:
    server = start_server(env=db_env, workers=2)
    value = unique()
    response = requests.post(server.url(f"/api/greetings?value={value}&fail=1"), timeout=10)
    assert response.status_code == 400
    assert not primary_has(postgres_url, value)
