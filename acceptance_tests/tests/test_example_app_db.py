"""The example app on the PostgreSQL primary and its replica, wherever the suite runs it.

The suite's app (acceptance_tests/tests/conftest.py) has both; the last two tests start apps of
their own under c2cwsgiutils_run.
"""

import re
import time
import uuid

import requests

from c2cwsgiutils.acceptance.composition import BaseComposition
from c2cwsgiutils.acceptance.connection import Connection
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import StartServer

PROFILER_ENV = {"SQL_PROFILER_SECRET": "pr0f", "C2C_SQL_REQUEST_ID": "1"}


def test_get_reads_from_the_replica(connection: Connection) -> None:
    body = connection.get_json("/api/hello")
    assert (body["engine"], body["in_recovery"]) == ("replica", True)


def test_post_writes_on_the_primary_and_reads_its_row_back(connection: Connection) -> None:
    value = f"hi-{uuid.uuid4().hex}"
    body = connection.post_json("/api/hello", json={"value": value}, expected_status=201)
    assert body == {"value": value, "found": 1, "engine": "primary", "in_recovery": False}
    wait_until(
        lambda: value in connection.get_json("/api/hello")["values"],
        what="the row on the replica",
        timeout=10,
    )


def test_get_that_writes_fails_with_the_read_only_error(
    connection: Connection, composition: BaseComposition
) -> None:
    connection.get("/api/hello/write", params={"value": f"w-{uuid.uuid4().hex}"}, expected_status=500)
    wait_until(
        lambda: "read-only transaction" in composition.logs(), what="the read-only error logged", timeout=5
    )
    assert "cannot execute INSERT in a read-only transaction" in composition.logs()


def test_forced_route_writes_on_the_primary(connection: Connection) -> None:
    value = f"f-{uuid.uuid4().hex}"
    body = connection.get_json("/api/hello/forced_write", params={"value": value})
    assert body == {"value": value, "engine": "primary", "in_recovery": False}


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
