"""Logging of the example app under real gunicorn: JSON and CEE records, and run-time log levels."""

import json
import os
import re
import signal
import time
import uuid
from typing import Any

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import StartServer

SECRET = {"X-API-Key": "level-secret"}
LEVEL_ENV = {"LOG_VIEW_SECRET": "level-secret"}


def json_lines(server: AppServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_json_logs_carry_the_request_and_gunicorn_is_json_too(start_server: StartServer) -> None:
    server = start_server(env={"LOG_TYPE": "json"})
    request_id = f"json-{uuid.uuid4()}"
    requests.get(server.url("/api/error?secret=hunter2"), headers={"X-Request-ID": request_id}, timeout=10)

    def records() -> list[dict[str, Any]]:
        found = [record for record in json_lines(server) if record.get("request_id") == request_id]
        return found if len(found) >= 2 else []

    error, access = sorted(
        wait_until(records, what="JSON records of the request", timeout=10), key=lambda r: r["facility"]
    )
    assert error["facility"] == "c2cwsgiutils.errors"
    assert (error["level"], error["method"], error["matched_route"]) == (3, "GET", "error")
    assert (error["path"], error["query_string"]) == ("/api/error", "secret=***")
    assert "RuntimeError: failure on demand" in error["full_message"]
    assert access["facility"] == "gunicorn.access"
    assert (access["method"], access["status"], access["path"]) == ("GET", 500, "/api/error?secret=***")
    assert access["bytes"] > 0
    assert access["duration"] >= 0
    assert "hunter2" not in server.log()
    # Every line is JSON, the master's included ("Booting worker" comes from gunicorn.error).
    assert all(line.startswith("{") for line in server.log().splitlines()), server.log()
    assert any(record["facility"] == "gunicorn.error" for record in json_lines(server))


def test_syslog_records_reach_a_udp_receiver(start_server: StartServer, udp_receiver: UdpReceiver) -> None:
    server = start_server(
        env={
            "LOG_TYPE": "console,logstash",
            "LOG_HOST": udp_receiver.host,
            "LOG_PORT": str(udp_receiver.port),
        }
    )
    requests.get(server.url("/api/ping"), headers={"X-Request-ID": "over-syslog"}, timeout=10)
    datagram = udp_receiver.wait_for(lambda data: b"over-syslog" in data and b"gunicorn.access" in data)
    record = json.loads(datagram.split(b"@cee:", 1)[1])
    assert (record["request_id"], record["status"], record["path"]) == ("over-syslog", 200, "/api/ping")


def level_of(server: AppServer, name: str = "c2cwsgiutils_app") -> tuple[str, int]:
    """Ask a fresh connection (so: any worker) for a logger's level, and the worker's pid."""
    response = requests.get(
        server.url(f"/c2c/logging/level?name={name}"), headers={**SECRET, "Connection": "close"}, timeout=10
    )
    response.raise_for_status()
    return response.json()["level"], int(response.headers["X-Worker-Pid"])


def set_level(server: AppServer, level: str, name: str = "c2cwsgiutils_app") -> None:
    response = requests.post(
        server.url("/c2c/logging/level"), data={"name": name, "level": level}, headers=SECRET, timeout=10
    )
    assert response.json()["level"] == level


def test_level_set_once_is_seen_by_every_worker(start_server: StartServer) -> None:
    server = start_server(env=LEVEL_ENV, workers=4)
    # Every worker has loaded the app (a worker still loading it takes no request).
    wait_until(
        lambda: len(set(re.findall(r"ready in process (\d+)", server.log()))) == 4,
        what="every worker ready",
        timeout=30,
    )
    set_level(server, "DEBUG")
    deadline = time.monotonic() + 1
    while {level_of(server)[0] for _ in range(8)} != {"DEBUG"}:
        assert time.monotonic() < deadline, "not every worker has the new level within one second"
        time.sleep(0.02)
    answers = [level_of(server) for _ in range(40)]
    assert {level for level, _ in answers} == {"DEBUG"}
    assert len({pid for _, pid in answers}) > 1


def test_replacement_worker_applies_the_stored_level(start_server: StartServer) -> None:
    server = start_server(env=LEVEL_ENV, workers=2)
    set_level(server, "ERROR")
    before = server.worker_pids()
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(server.worker_pids() - before) == 1, what="the killed worker replaced", timeout=20)
    replacement = (server.worker_pids() - before).pop()
    levels = wait_until(
        lambda: {pid: level for level, pid in (level_of(server) for _ in range(20))}.get(replacement),
        what="an answer of the replacement worker",
        timeout=10,
    )
    assert levels == "ERROR"


@pytest.mark.redis
def test_two_gunicorns_sharing_redis_share_the_level(start_server: StartServer) -> None:
    env = {
        **LEVEL_ENV,
        "C2C_REDIS_URL": "redis://127.0.0.1:6379/0",
        "C2C_BROADCAST_PREFIX": f"test-{uuid.uuid4()}",
    }
    first = start_server(env=env, workers=2)
    second = start_server(env=env, workers=2)
    set_level(first, "CRITICAL")
    wait_until(
        lambda: all(level_of(second)[0] == "CRITICAL" for _ in range(10)),
        what="the level on the other gunicorn",
        timeout=10,
    )


def test_log_line_of_a_request_has_its_id_in_console_format(start_server: StartServer) -> None:
    server = start_server(env={"LOG_LEVEL": "DEBUG"})
    requests.get(server.url("/api/sleep?seconds=0"), headers={"X-Request-ID": "console-id"}, timeout=10)
    line = re.compile(r"\[c2cwsgiutils_app\.views\]\[\d+\]\[console-id\] sleeping")
    wait_until(lambda: line.search(server.log()), what="the debug line with its request ID", timeout=10)
