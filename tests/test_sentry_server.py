"""c2cwsgiutils.sentry under the real c2cwsgiutils_run: its refusals at start-up, and real gunicorn workers.

Events are read back from the stand-in for Sentry's ingestion endpoint
(c2cwsgiutils.acceptance.sentry.SentryReceiver, a real HTTP server that parses sentry-sdk's
envelopes). In-process, with WebTest: tests/unit/test_sentry.py.
"""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from c2cwsgiutils import sentry
from c2cwsgiutils.acceptance.sentry import SentryReceiver
from c2cwsgiutils.acceptance.server import free_port
from testing.fixtures import RunScript, StartServer

LOG_SECRET = "log-view-secret-0123456789"  # noqa: S105 (made up, to look for in events)
QUERY_SECRET = "query-secret-abcdef"  # noqa: S105


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    with SentryReceiver() as found:
        yield found


# Settings that stop c2cwsgiutils_run before it serves anything.


def test_bad_client_option_stops_c2cwsgiutils_run_in_one_line(
    run_script: RunScript, example_app_ini: Any
) -> None:
    result: subprocess.CompletedProcess[str] = run_script(
        "c2cwsgiutils_run",
        env={
            "C2CWSGIUTILS_CONFIG": str(example_app_ini),
            "SENTRY_URL": "http://public@127.0.0.1:9/1",
            "SENTRY_CLIENT_SAMPEL_RATE": "0.5",
        },
    )
    assert result.returncode == 2
    assert result.stderr == (
        "c2cwsgiutils_run: environment variable SENTRY_CLIENT_SAMPEL_RATE: "
        "'sampel_rate' is not a sentry_sdk.init option\n"
    )


def test_a_short_secret_stops_c2cwsgiutils_run_in_one_line(
    run_script: RunScript, example_app_ini: Any
) -> None:
    result: subprocess.CompletedProcess[str] = run_script(
        "c2cwsgiutils_run",
        env={
            "C2CWSGIUTILS_CONFIG": str(example_app_ini),
            "SENTRY_URL": "http://public@127.0.0.1:9/1",
            "DEBUG_VIEW_SECRET": "d3bug",
        },
    )
    assert result.returncode == 2
    assert result.stderr == (
        "c2cwsgiutils_run: environment variable DEBUG_VIEW_SECRET is too short to be masked in Sentry "
        f"events (5 characters; at least {sentry.MIN_SECRET_LENGTH} with SENTRY_URL set)\n"
    )


# Under c2cwsgiutils_run: real workers, each with its own client after the fork.


def _timed_get(url: str) -> float:
    start = time.monotonic()
    requests.get(url, timeout=30)
    return time.monotonic() - start


def _load(url: str, clients: int = 4, requests_each: int = 30) -> list[float]:
    """Return the sorted durations of ``clients`` threads requesting ``url`` in turn."""
    durations: list[float] = []

    def client() -> None:
        durations.extend(_timed_get(url) for _ in range(requests_each))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(durations)


def test_under_gunicorn_one_event_per_500_none_per_4xx(
    start_server: StartServer, receiver: SentryReceiver
) -> None:
    server = start_server(env={"SENTRY_URL": receiver.dsn, "LOG_VIEW_SECRET": LOG_SECRET}, workers=2)
    for _ in range(4):
        assert requests.get(server.url("/api/error?status=500"), timeout=10).status_code == 500
    for status in (400, 403):
        assert (
            requests.get(
                server.url(f"/api/error?status={status}&secret={QUERY_SECRET}"), timeout=10
            ).status_code
            == status
        )
    events = receiver.wait_for_events(4)
    time.sleep(1.0)  # anything more would arrive by now
    assert len(receiver.events) == 4
    assert {event["tags"]["route"] for event in events} == {"error"}
    assert len({event["tags"]["request_id"] for event in events}) == 4
    raw = receiver.raw().decode()
    for secret in (LOG_SECRET, QUERY_SECRET):
        assert secret not in raw


def test_a_hanging_sentry_delays_no_request(start_server: StartServer, receiver: SentryReceiver) -> None:
    server = start_server(env={"SENTRY_URL": receiver.dsn}, workers=2)
    url = server.url("/api/error?status=500")
    answering = _load(url)
    receiver.wait_for_events(len(answering))
    receiver.hang()
    # More errors than sentry-sdk's queue holds (100) while the stand-in holds every connection:
    # the queue fills, then drops events; a request never waits for it.
    hanging = _load(url, requests_each=40)
    assert len(receiver.events) == len(answering)  # nothing got through while it hung
    median_answering = answering[len(answering) // 2]
    median_hanging = hanging[len(hanging) // 2]
    # Generous margins for a loaded 2-core machine: a blocked request would wait for the
    # transport's whole timeout (tens of seconds).
    assert median_hanging < median_answering * 3 + 0.05, (median_answering, median_hanging)
    assert hanging[-1] < 2.0, hanging[-5:]
    # At exit each worker waits at most sentry-sdk's shutdown timeout (2 s) for the stuck queue.
    start = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - start < 12


def test_a_sentry_that_is_down_delays_no_request(start_server: StartServer) -> None:
    """Nothing listens at the DSN's port: every send is refused, in sentry-sdk's own thread."""
    server = start_server(env={"SENTRY_URL": f"http://public@127.0.0.1:{free_port()}/1"}, workers=2)
    durations = _load(server.url("/api/error?status=500"), clients=2, requests_each=20)
    assert durations[len(durations) // 2] < 0.5, durations
    assert durations[-1] < 2.0, durations[-5:]


def test_with_preload_every_worker_reports(start_server: StartServer, receiver: SentryReceiver) -> None:
    """sentry-sdk, initialised in the master before the fork, sends from each worker all the same."""
    server = start_server(env={"SENTRY_URL": receiver.dsn, "GUNICORN_PARAMS": "--preload"}, workers=2)
    workers: set[str] = set()
    sent = 0
    while len(workers) < 2 and sent < 60:  # until both workers have failed at least once
        response = requests.get(server.url("/api/error"), headers={"Connection": "close"}, timeout=10)
        workers.add(response.headers["X-Worker-Pid"])
        sent += 1
    assert len(workers) == 2
    assert len(receiver.wait_for_events(sent)) == sent


def test_master_reports_a_killed_worker(start_server: StartServer, receiver: SentryReceiver) -> None:
    """The gunicorn master reports too (c2cwsgiutils.gunicorn_config): a worker killed by the OOM killer."""
    server = start_server(env={"SENTRY_URL": receiver.dsn}, workers=2)
    victim = min(server.worker_pids())
    os.kill(victim, signal.SIGKILL)
    events = receiver.wait_for_events(1, timeout=30)
    messages = [event.get("logentry", {}).get("formatted", "") for event in events]
    assert any(str(victim) in message and "SIGKILL" in message for message in messages), messages
    # The master's events are scrubbed and tagged like the workers' (no request there).
    assert "request" not in events[0]
