"""Fixtures shared by the library's tests (tests/) and the example app's acceptance tests.

Loaded by the root conftest.py as a pytest plugin; tests ask for the fixtures by name and import
only the type aliases from here.
"""

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer, clean_environ, console_script
from c2cwsgiutils.acceptance.udp import UdpReceiver

EXAMPLE_APP_INI = Path(__file__).parent.parent / "acceptance_tests" / "app" / "production.ini"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_REPLICA_URL = os.environ.get(
    "TEST_POSTGRES_REPLICA_URL",
    f"postgresql://postgres@127.0.0.1:{os.environ.get('PG_REPLICA_PORT', '5433')}/test",
)

StartServer = Callable[..., AppServer]
RunScript = Callable[..., subprocess.CompletedProcess[str]]
RequestInFlight = Callable[..., AbstractContextManager[list[int]]]


@pytest.fixture
def example_app_ini() -> Path:
    """The example app's ini file."""
    return EXAMPLE_APP_INI


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers under the real c2cwsgiutils_run; every one is stopped at teardown.

    Call it as ``start_server(env={...}, workers=2, config_file=...)``; by default it serves the
    example app on a fresh SQLite file.
    """
    servers: list[AppServer] = []

    def start(
        env: Mapping[str, str] | None = None, config_file: Path = EXAMPLE_APP_INI, workers: int = 2
    ) -> AppServer:
        full_env = {"SQLALCHEMY_URL": f"sqlite:///{tmp_path}/app.sqlite", **(env or {})}
        server = AppServer(config_file, env=full_env, workers=workers)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def udp_receiver() -> Iterator[UdpReceiver]:
    """A real UDP socket on loopback that records what it receives."""
    with UdpReceiver() as receiver:
        yield receiver


def _check_postgres(url: str, what: str) -> str:
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL {what} is needed at {url}: {error}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the local PostgreSQL; fails (never skips) when it does not answer."""
    return _check_postgres(POSTGRES_URL, "primary")


@pytest.fixture(scope="session")
def postgres_replica_url() -> str:
    """The URL of its streaming replica, made by scripts/pg-replica.sh (``make services``)."""
    return _check_postgres(POSTGRES_REPLICA_URL, "replica (run scripts/pg-replica.sh)")


def _run_script(
    name: str, *args: str, env: Mapping[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    full_env = {key: value for key, value in clean_environ(env).items() if key not in unset}
    return subprocess.run(
        [console_script(name), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def run_script() -> RunScript:
    """Run an installed console script in a clean environment plus ``env``, less ``unset``."""
    return _run_script


@contextmanager
def _request_in_flight(server: AppServer, seconds: float = 1.0) -> Iterator[list[int]]:
    statuses: list[int] = []
    marker = f"in-flight-{uuid.uuid4()}"
    url = server.url(f"/api/sleep?seconds={seconds}")
    thread = threading.Thread(
        target=lambda: statuses.append(
            requests.get(url, headers={"X-Request-ID": marker}, timeout=seconds + 10).status_code
        )
    )
    thread.start()
    # The example app logs the ID of a sleeping request: then it has reached a worker.
    deadline = time.monotonic() + 10
    while marker not in server.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield statuses
    finally:
        thread.join()


@pytest.fixture
def request_in_flight() -> RequestInFlight:
    """``with request_in_flight(server) as statuses:`` keeps a slow request going during the block.

    It enters the block once the request has reached a worker; afterwards ``statuses`` holds its
    status.
    """
    return _request_in_flight
