"""The example app on the PostgreSQL primary and its replica, under c2cwsgiutils_run (real gunicorn)."""

import re
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from tests.fixtures import EXAMPLE_APP_INI, StartServer

PROFILER_ENV = {"SQL_PROFILER_SECRET": "pr0f", "C2C_SQL_REQUEST_ID": "1"}


@pytest.fixture(scope="module")
def app(postgres_url: str, postgres_replica_url: str) -> Iterator[AppServer]:
    env = {"SQLALCHEMY_URL": postgres_url, "SQLALCHEMY_URL_SLAVE": postgres_replica_url}
    with AppServer(EXAMPLE_APP_INI, env=env) as server:
        yield server


def test_get_reads_from_the_replica(app: AppServer) -> None:
    body = requests.get(app.url("/api/hello"), timeout=10).json()
    assert (body["engine"], body["in_recovery"]) == ("replica", True)


def test_post_writes_on_the_primary_and_reads_its_row_back(app: AppServer) -> None:
    value = f"hi-{uuid.uuid4().hex}"
    response = requests.post(app.url("/api/hello"), json={"value": value}, timeout=10)
    assert response.status_code == 201
    assert response.json() == {"value": value, "found": 1, "engine": "primary", "in_recovery": False}
    deadline = time.monotonic() + 10
    while value not in requests.get(app.url("/api/hello"), timeout=10).json()["values"]:
        assert time.monotonic() < deadline, "the row did not reach the replica"
        time.sleep(0.1)


def test_get_that_writes_fails_with_the_read_only_error(app: AppServer) -> None:
    request_id = f"ro-{uuid.uuid4().hex}"
    response = requests.get(
        app.url(f"/api/hello/write?value=w-{uuid.uuid4().hex}"),
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert response.status_code == 500
    deadline = time.monotonic() + 5
    while "read-only transaction" not in app.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "cannot execute INSERT in a read-only transaction" in app.log()


def test_forced_route_writes_on_the_primary(app: AppServer) -> None:
    value = f"f-{uuid.uuid4().hex}"
    response = requests.get(app.url(f"/api/hello/forced_write?value={value}"), timeout=10)
    assert response.json() == {"value": value, "engine": "primary", "in_recovery": False}


def test_sqlite_default_has_one_engine(start_server: StartServer) -> None:
    server = start_server()
    body = requests.get(server.url("/api/hello"), timeout=10).json()
    assert body == {"values": [], "engine": "primary"}


def test_profiler_switched_on_once_explains_in_every_worker(
    start_server: StartServer, postgres_url: str, postgres_replica_url: str
) -> None:
    env = {"SQLALCHEMY_URL": postgres_url, "SQLALCHEMY_URL_SLAVE": postgres_replica_url, **PROFILER_ENV}
    server = start_server(env=env, workers=3)
    workers = server.worker_pids()
    status = requests.get(server.url("/c2c/sql_profiler"), headers={"X-API-Key": "pr0f"}, timeout=10)
    assert status.json() == {"status": 200, "enabled": False}
    switched = requests.get(server.url("/c2c/sql_profiler?secret=pr0f&enable=1"), timeout=10)
    assert switched.json() == {"status": 200, "enabled": True}
    answered: set[int] = set()
    deadline = time.monotonic() + 20
    while answered != workers:
        assert time.monotonic() < deadline, f"only {answered} of {workers} answered"
        # New connections: each request may land on another worker.
        response = requests.get(server.url("/api/hello"), headers={"Connection": "close"}, timeout=10)
        answered.add(int(response.headers["X-Worker-Pid"]))
    deadline = time.monotonic() + 5
    while True:
        explained = {
            int(pid)
            for pid in re.findall(r"\[c2cwsgiutils\.sql_profiler\]\[(\d+)\]\[[^\]]*\] EXPLAIN", server.log())
        }
        if explained >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert explained >= workers
    assert "Seq Scan on hello" in server.log() or "Index" in server.log()
