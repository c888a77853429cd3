"""Fixtures shared by the library's tests (tests/) and the example app's acceptance tests.

Loaded by the root conftest.py as a pytest plugin; tests ask for the fixtures by name and import
only the type aliases from here.
"""

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Self

import psycopg
import pytest
import redis
import requests

from c2cwsgiutils.acceptance.server import AppServer, clean_environ, console_script, free_port
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import wait_until

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


class RedisServer:
    """A redis-server of the test's own, on a free port, that can be stopped and started again.

    Tests that stop Redis use it rather than the shared one on 6379, which other tests use at the
    same time.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=10, what="redis-server answers")
        client.close()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the redis-server for the block (SIGSTOP): it keeps its sockets and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


# The ops views' settings a test process may have in its environment, and their shared state.
OPS_ENVIRON = (
    "LOG_VIEW_SECRET",
    "SQL_PROFILER_SECRET",
    "DEBUG_VIEW_SECRET",
    "C2C_BASE_PATH",
    "C2C_REDIS_URL",
)


@pytest.fixture
def clean_ops_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ops settings from the environment, and no broadcast listener or log level left after."""
    from c2cwsgiutils import broadcast, logging_view

    for name in OPS_ENVIRON:
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    yield
    logging_view.OVERRIDES.reset()
    broadcast.BROADCASTER.reset()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private :class:`RedisServer`, started; stopped at teardown."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


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


def postgres_cluster(name: str, action: str) -> None:
    """Run ``pg_ctlcluster`` (``start``, ``stop``, ``restart``) on a local cluster (``main``, ``replica``)."""
    version = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast", version, name, action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for_postgres(url: str, timeout: float = 30) -> None:
    """Wait until the PostgreSQL server at ``url`` answers a query."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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


class Load:
    """Clients requesting a URL in threads, half on keep-alive connections, half one-shot.

    ``with Load(url) as load:`` runs them during the block; ``load.outcomes`` counts the answers
    by status (or by exception name), and :meth:`wait_for_requests` waits for more of them.
    """

    def __init__(self, url: str, clients: int = 6) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index % 2 == 0,)) for index in range(clients)
        ]

    def _run(self, keep_alive: bool) -> None:
        headers = {} if keep_alive else {"Connection": "close"}
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    outcome = str(session.get(self.url, headers=headers, timeout=10).status_code)
                except requests.RequestException as error:
                    outcome = type(error).__name__
                with self._lock:
                    self.outcomes[outcome] += 1

    def total(self) -> int:
        """Return how many requests have been answered (or have failed) so far."""
        with self._lock:
            return sum(self.outcomes.values())

    def wait_for_requests(self, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` more requests are done."""
        target = self.total() + count
        deadline = time.monotonic() + timeout
        while self.total() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the load did {self.total() - target + count} of {count} requests in {timeout}s"
                )
            time.sleep(0.02)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
