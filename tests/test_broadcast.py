"""The broadcast: in one process, between Broadcasters on real sockets and Redis, and under real gunicorn."""

import collections
import logging
import os
import select
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import requests

from c2cwsgiutils import broadcast
from c2cwsgiutils.acceptance.server import AppServer, free_port
from c2cwsgiutils.broadcast.core import Broadcaster, Call, TransportError, process_role
from c2cwsgiutils.broadcast.local import LocalTransport
from c2cwsgiutils.broadcast.redis_transport import (
    MAX_BACKOFF,
    PING_INTERVAL,
    REQUEST_TIMEOUT,
    RedisTransport,
    safe_url,
)
from testing.fixtures import RedisServer, StartServer
from tests.apps import broadcast as broadcast_app

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).parent.parent
CONVERGENCE = 4.0
"""Seconds within which every worker has a call stored while Redis was away, once Redis answers (README)."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.02)


@pytest.fixture
def global_broadcaster() -> Iterator[Broadcaster]:
    broadcast.BROADCASTER.reset()
    yield broadcast.BROADCASTER
    broadcast.BROADCASTER.reset()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a path short enough for Unix sockets (pytest's tmp_path may not be)."""
    with tempfile.TemporaryDirectory(prefix="bc-") as directory:
        yield Path(directory)


@pytest.fixture
def broadcasters(short_dir: Path) -> Iterator[Callable[[], Broadcaster]]:
    """Make Broadcasters that stand for processes; all are reset at teardown."""
    made: list[Broadcaster] = []

    def make() -> Broadcaster:
        made.append(Broadcaster())
        return made[-1]

    yield make
    for broadcaster in made:
        broadcaster.reset()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {error}", pytrace=False)
    return REDIS_URL


# In one process: the API.


def test_broadcast_calls_the_local_callback_and_returns_its_answer(global_broadcaster: Broadcaster) -> None:
    broadcast.subscribe("double", lambda value: (value, value))
    assert broadcast.broadcast("double", {"value": 2}, expect_answers=True) == [[2, 2]]
    assert broadcast.broadcast("double", {"value": 2}) is None


def test_a_channel_nobody_subscribed_gets_no_answer(global_broadcaster: Broadcaster) -> None:
    assert broadcast.broadcast("nobody", expect_answers=True) == []


def test_unsubscribe_stops_the_calls(global_broadcaster: Broadcaster) -> None:
    calls: list[int] = []
    broadcast.subscribe("count", lambda: calls.append(1))
    broadcast.broadcast("count")
    broadcast.unsubscribe("count")
    broadcast.broadcast("count")
    assert calls == [1]


def test_parameters_that_are_not_json_are_the_callers_error(global_broadcaster: Broadcaster) -> None:
    broadcast.subscribe("anything", lambda value: value)
    with pytest.raises(TypeError):
        broadcast.broadcast("anything", {"value": object()})


def test_a_failing_callback_is_logged_and_gives_no_answer(
    global_broadcaster: Broadcaster, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise RuntimeError("boom")

    broadcast.subscribe("fail", fail)
    assert broadcast.broadcast("fail", expect_answers=True) == []
    assert "broadcast callback of fail failed" in caplog.text


def test_decorator_broadcasts_the_call(global_broadcaster: Broadcaster) -> None:
    seen: list[tuple[str, int]] = []

    @broadcast.decorator(expect_answers=True)
    def remember(name: str, times: int = 1) -> str:
        seen.append((name, times))
        return name * times

    assert remember("ab", times=2) == ["abab"]
    assert remember("c") == ["c"]
    assert seen == [("ab", 2), ("c", 1)]


def test_a_stored_call_is_replayed_for_a_late_subscriber(global_broadcaster: Broadcaster) -> None:
    broadcast.broadcast("level", {"level": "DEBUG"}, store=True, state_key="sqlalchemy")
    broadcast.broadcast("level", {"level": "INFO"}, store=True, state_key="sqlalchemy")
    broadcast.broadcast("level", {"level": "ERROR"}, store=True, state_key="requests")
    applied: list[str] = []
    broadcast.subscribe("level", lambda level: applied.append(level))  # noqa: PLW0108 (named parameter)
    assert sorted(applied) == ["ERROR", "INFO"]
    assert broadcast.stored("level") == {"sqlalchemy": {"level": "INFO"}, "requests": {"level": "ERROR"}}
    broadcast.forget("level", "requests")
    assert broadcast.stored("level") == {"sqlalchemy": {"level": "INFO"}}


def test_process_role_tells_a_plain_process_from_a_gunicorn_worker() -> None:
    assert process_role({}) == ("plain", os.getpid())
    assert process_role({"SERVER_SOFTWARE": "gunicorn/27.0.1"}) == ("worker", os.getppid())


def test_include_in_a_plain_process_broadcasts_in_process(global_broadcaster: Broadcaster) -> None:
    from tests.apps import make_app

    make_app()
    assert global_broadcaster.status()["transport"] == "in-process"


def test_safe_url_masks_the_password() -> None:
    assert safe_url("redis://user:hunter2@redis:6379/0") == "redis://user:***@redis:6379/0"
    assert safe_url("redis://redis:6379/0") == "redis://redis:6379/0"


# Between Broadcasters of one process, on the real transports.


def local_pair(make: Callable[[], Broadcaster], directory: Path) -> tuple[Broadcaster, Broadcaster]:
    first, second = make(), make()
    for name, broadcaster in (("first", first), ("second", second)):
        broadcaster.subscribe("who", lambda name=name: name)
        broadcaster.start("local", lambda b: LocalTransport(b, directory, "group"))
    return first, second


def test_local_channel_gathers_every_answer(broadcasters: Callable[[], Broadcaster], short_dir: Path) -> None:
    first, _ = local_pair(broadcasters, short_dir)
    assert first.broadcast("who", expect_answers=True, timeout=5) == ["first", "second"]


def test_local_channel_removes_the_socket_of_a_dead_process(
    broadcasters: Callable[[], Broadcaster], short_dir: Path
) -> None:
    first, _ = local_pair(broadcasters, short_dir)
    dead = short_dir / "group" / "1-deadbeef.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(dead))  # closed without unlinking, as a killed process leaves it
    started = time.monotonic()
    assert first.broadcast("who", expect_answers=True, timeout=5) == ["first", "second"]
    assert time.monotonic() - started < 1
    assert not dead.exists()


def test_local_channel_refuses_a_directory_others_can_write(
    broadcasters: Callable[[], Broadcaster], short_dir: Path
) -> None:
    short_dir.chmod(0o777)  # the point of the test
    broadcaster = broadcasters()
    broadcaster.start("local", lambda b: LocalTransport(b, short_dir, "group"))
    assert broadcaster.status()["transport"] == "in-process"


def test_redis_gathers_the_answers_of_every_process(
    broadcasters: Callable[[], Broadcaster], redis_url: str
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    first, second = broadcasters(), broadcasters()
    for name, broadcaster in (("first", first), ("second", second)):
        broadcaster.subscribe("who", lambda name=name: name)
        broadcaster.start("redis", lambda b: RedisTransport(b, redis_url, prefix, 2.0))
    assert sorted(first.broadcast("who", expect_answers=True, timeout=5) or []) == ["first", "second"]


def test_redis_stored_call_reaches_a_process_started_later_once(
    redis_server: RedisServer, broadcasters: Callable[[], Broadcaster]
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    first = broadcasters()
    first.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 2.0))
    first.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
    applied: list[str] = []
    later = broadcasters()
    later.subscribe("level", lambda level: applied.append(level))  # noqa: PLW0108 (named parameter)
    later.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 2.0))
    assert applied == ["DEBUG"]
    # Redis drops every subscriber; the listeners reconnect and apply nothing twice.
    client = redis.Redis.from_url(redis_server.url)
    generation = later.status()["listener_generation"]
    transport = later.transport
    assert isinstance(transport, RedisTransport)
    subscriptions = transport.subscriptions
    client.client_kill_filter(_type="pubsub")
    wait_until(lambda: transport.subscriptions > subscriptions, 5, "the listener subscribes again")
    assert later.status()["listener_generation"] == generation  # the same thread, looping
    first.broadcast("level", {"level": "INFO"}, store=True, state_key="app")
    wait_until(lambda: applied == ["DEBUG", "INFO"], 5, "the new call arrives")
    client.close()


def test_redis_unreachable_applies_here_and_warns_once(
    broadcasters: Callable[[], Broadcaster], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    broadcaster = broadcasters()
    broadcaster.subscribe("who", lambda: "here")
    with caplog.at_level(logging.WARNING, "c2cwsgiutils.broadcast"):
        started = time.monotonic()
        broadcaster.start("redis", lambda b: RedisTransport(b, url, "test", 1.0))
        answers = [broadcaster.broadcast("who", expect_answers=True, timeout=2) for _ in range(3)]
        assert time.monotonic() - started < 3
    assert answers == [["here"]] * 3
    unreachable = [record for record in caplog.records if "is unreachable" in record.getMessage()]
    assert len(unreachable) == 1


class FreezableProxy:
    """A TCP proxy to a Redis whose open connections can be frozen, new ones passing.

    A frozen connection stays open and carries nothing, as one that a NAT or a firewall dropped
    without a reset, or a paused server: the other end never hears of it.
    """

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"redis://127.0.0.1:{self._server.getsockname()[1]}/0"
        self._frozen: list[threading.Event] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            frozen = threading.Event()
            self._frozen.append(frozen)
            thread = threading.Thread(target=self._pump, args=(client, frozen), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket, frozen: threading.Event) -> None:
        with client, socket.create_connection(self._target) as upstream:
            ends = {client: upstream, upstream: client}
            while not (self._stop.is_set() or frozen.is_set()):
                readable, _, _ = select.select(list(ends), [], [], 0.1)
                for end in readable:
                    if frozen.is_set():
                        break
                    data = end.recv(65536)
                    if not data:
                        return
                    ends[end].sendall(data)
            self._stop.wait()  # frozen: keep both ends open, silent

    def freeze(self) -> None:
        """Freeze every connection open now."""
        for frozen in list(self._frozen):
            frozen.set()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._server.close()


@pytest.fixture
def freezable_proxy(redis_server: RedisServer) -> Iterator[FreezableProxy]:
    proxy = FreezableProxy(redis_server.port)
    yield proxy
    proxy.close()


def test_a_subscription_gone_silent_is_made_again_and_catches_up(
    broadcasters: Callable[[], Broadcaster], redis_server: RedisServer, freezable_proxy: FreezableProxy
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    sender, listener = broadcasters(), broadcasters()
    applied: list[str] = []
    listener.subscribe("level", lambda level: applied.append(level))  # noqa: PLW0108 (named parameter)
    sender.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 1.0))
    listener.start("redis", lambda b: RedisTransport(b, freezable_proxy.url, prefix, 1.0))
    sender.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
    wait_until(lambda: applied == ["DEBUG"], 5, "the listener gets the first call")
    freezable_proxy.freeze()
    frozen = time.monotonic()
    sender.broadcast("level", {"level": "INFO"}, store=True, state_key="app")
    wait_until(lambda: applied == ["DEBUG", "INFO"], 10, "the listener subscribes again and catches up")
    print(f"caught up {time.monotonic() - frozen:.2f}s after its connection went silent")
    # PING_INTERVAL, then the Redis timeout for the answer, then the first reconnection.
    assert time.monotonic() - frozen < PING_INTERVAL + 1.0 + MAX_BACKOFF + 1


def test_reading_the_stored_calls_of_a_paused_redis_fails_within_the_request_timeout(
    broadcasters: Callable[[], Broadcaster], redis_server: RedisServer
) -> None:
    broadcaster = broadcasters()
    broadcaster.start("redis", lambda b: RedisTransport(b, redis_server.url, f"test_{uuid.uuid4().hex}", 2.0))
    broadcaster.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
    assert broadcaster.stored("level") == {"app": {"level": "DEBUG"}}
    with redis_server.paused():
        for _ in range(2):  # the second knows at once
            started = time.monotonic()
            with pytest.raises(TransportError):
                broadcaster.stored("level")
            assert time.monotonic() - started < REQUEST_TIMEOUT + 0.3


def test_a_call_stored_while_redis_is_paused_is_queued_until_it_answers(
    broadcasters: Callable[[], Broadcaster], redis_server: RedisServer
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    sender, other = broadcasters(), broadcasters()
    applied: list[str] = []
    other.subscribe("level", lambda level: applied.append(level))  # noqa: PLW0108 (named parameter)
    for broadcaster in (sender, other):
        broadcaster.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 1.0))
    with redis_server.paused():
        sender.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
        assert sender.queued("level") == {"app": {"level": "DEBUG"}}
    wait_until(lambda: applied == ["DEBUG"], CONVERGENCE, "the queued call reaches the other process")
    wait_until(lambda: not sender.queued("level"), 1, "nothing is left in the queue")


def test_a_fresh_call_replaces_a_stored_one_from_a_clock_ahead(
    broadcasters: Callable[[], Broadcaster], redis_server: RedisServer
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    ahead = Call("x", "level", {"level": "ERROR"}, "elsewhere", key="app", time=time.time() + 3600)
    with redis.Redis.from_url(redis_server.url) as client:
        client.hset(f"{prefix}:state", orjson.dumps(["level", "app"]), ahead.encode())
    applied: list[str] = []
    sender, other = broadcasters(), broadcasters()
    other.subscribe("level", lambda level: applied.append(level))  # noqa: PLW0108 (named parameter)
    for broadcaster in (sender, other):
        broadcaster.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 1.0))
    assert applied == ["ERROR"]
    sender.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
    wait_until(lambda: applied == ["ERROR", "DEBUG"], 5, "the fresh call reaches the other process")
    assert sender.stored("level") == {"app": {"level": "DEBUG"}}


def test_a_queued_call_does_not_replace_a_newer_one(
    broadcasters: Callable[[], Broadcaster], redis_server: RedisServer
) -> None:
    prefix = f"test_{uuid.uuid4().hex}"
    late, other = broadcasters(), broadcasters()
    seen: dict[str, list[str]] = {"late": [], "other": []}
    for name, broadcaster in (("late", late), ("other", other)):
        broadcaster.subscribe("level", lambda level, name=name: seen[name].append(level))
        broadcaster.start("redis", lambda b: RedisTransport(b, redis_server.url, prefix, 1.0))
    transport = late.transport
    assert isinstance(transport, RedisTransport)
    transport.connected = False  # as if its last request had found Redis away: the call is queued
    late.broadcast("level", {"level": "DEBUG"}, store=True, state_key="app")
    other.broadcast("level", {"level": "ERROR"}, store=True, state_key="app")
    wait_until(lambda: not late.queued("level"), 5, "the queue is sent")
    time.sleep(0.5)
    assert other.stored("level") == {"app": {"level": "ERROR"}}
    assert seen["other"][-1] == "ERROR"
    assert seen["late"][-1] == "ERROR"  # it applied the newer call over its own


# Under real gunicorn, with the probe app of tests/apps/broadcast.py.


@pytest.fixture
def probe_ini(tmp_path: Path) -> Path:
    path = tmp_path / "broadcast.ini"
    path.write_text(broadcast_app.INI, encoding="utf-8")
    return path


def every_worker_listens(server: AppServer) -> AppServer:
    """Wait until every worker of ``server`` listens (it answers a gather)."""
    wait_until(
        lambda: server.worker_pids() <= {answer["pid"] for answer in gather(server)},
        20,
        "every worker answers",
    )
    return server


@pytest.fixture
def start_probe(start_server: StartServer, probe_ini: Path) -> Callable[..., AppServer]:
    """Start the probe app and wait until every worker listens."""

    def start(workers: int = 4, **env: str) -> AppServer:
        server = start_server(env={"PYTHONPATH": str(REPO), **env}, config_file=probe_ini, workers=workers)
        return every_worker_listens(server)

    return start


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The probe app with 4 workers and no Redis, shared by the tests of the local channel."""
    ini = tmp_path_factory.mktemp("local") / "broadcast.ini"
    ini.write_text(broadcast_app.INI, encoding="utf-8")
    with AppServer(ini, env={"PYTHONPATH": str(REPO)}, workers=4) as server:
        yield server


@pytest.fixture
def local_probe(local_server: AppServer) -> AppServer:
    """The shared server, once every worker (a replaced one too) listens."""
    return every_worker_listens(local_server)


def get(server: AppServer, path: str) -> dict[str, Any]:
    """GET a JSON path on a fresh connection."""
    response = requests.get(server.url(path), timeout=15)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def gather(server: AppServer, timeout: float = 1) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = get(server, f"/probe/gather?timeout={timeout}")["answers"]
    return answers


def values(server: AppServer) -> dict[int, str]:
    return {answer["pid"]: answer["value"] for answer in gather(server)}


def test_a_value_set_once_is_seen_by_40_requests_within_a_second(local_probe: AppServer) -> None:
    server = local_probe
    started = time.monotonic()
    assert get(server, "/probe/set?value=one")["value"] == "one"

    def read(_: int) -> tuple[int, str]:
        # Each request reads the value when it arrives, then holds its thread so the next go elsewhere.
        while True:
            seen = get(server, "/probe/get?sleep=0.1")
            if seen["value"] == "one" or time.monotonic() - started > 1:
                return seen["pid"], seen["value"]

    with ThreadPoolExecutor(40) as executor:
        seen = collections.Counter(executor.map(read, range(40)))
    assert {value for _, value in seen} == {"one"}, seen
    assert {pid for pid, _ in seen} == server.worker_pids(), seen


def test_gather_returns_one_answer_per_worker(local_probe: AppServer) -> None:
    server = local_probe
    assert sorted(answer["pid"] for answer in gather(server, timeout=5)) == sorted(server.worker_pids())


def test_the_replacement_of_a_killed_worker_applies_the_stored_value(local_probe: AppServer) -> None:
    server = local_probe
    get(server, "/probe/set?value=kept")
    before = server.worker_pids()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: server.worker_pids() - before, 20, "gunicorn replaces the worker")
    # It was not there when the value was set: it applied the stored call when it started.
    workers = server.worker_pids()
    assert victim not in workers
    wait_until(lambda: values(server) == dict.fromkeys(workers, "kept"), 20, "the new worker listens")


def test_a_dead_listener_thread_is_restarted(local_probe: AppServer) -> None:
    server = local_probe
    killed = get(server, "/probe/kill-listener")

    def restarted() -> bool:
        seen = get(server, "/probe/get")
        return bool(seen["pid"] == killed["pid"] and seen["listener_generation"] > killed["generation"])

    wait_until(restarted, 10, "the listener of the worker is restarted")
    assert "died; restarting it" in server.log()
    get(server, "/probe/set?value=after")
    wait_until(lambda: set(values(server).values()) == {"after"}, 5, "every worker gets the value")


def test_with_preload_the_workers_listen_and_the_master_does_not(
    start_probe: Callable[..., AppServer],
) -> None:
    server = start_probe(workers=2, GUNICORN_PARAMS="--preload")
    # Each worker listens once it has started its listener, a moment after the server answers.
    wait_until(lambda: set(values(server)) == server.worker_pids(), 20, "every worker listens")
    get(server, "/probe/set?value=preloaded")
    # Only the workers answer (a 1 s gather: retried, as a loaded machine can make a worker late).
    workers = server.worker_pids()
    wait_until(lambda: values(server) == dict.fromkeys(workers, "preloaded"), 10, "every worker has it")
    assert get(server, "/probe/get")["transport"] == "local"


def test_two_servers_share_state_through_redis(start_probe: Callable[..., AppServer], redis_url: str) -> None:
    env = {"C2C_REDIS_URL": redis_url, "C2C_BROADCAST_PREFIX": f"test_{uuid.uuid4().hex}"}
    first, second = start_probe(workers=2, **env), start_probe(workers=2, **env)
    assert get(first, "/probe/get")["transport"] == "redis"
    wait_until(lambda: len(gather(first)) == 4, 10, "the workers of both servers answer")
    get(first, "/probe/set?value=shared")
    wait_until(lambda: set(values(second).values()) == {"shared"}, 2, "the other server sees the value")


def test_a_restarted_redis_is_reconnected_to(
    start_probe: Callable[..., AppServer], redis_server: RedisServer
) -> None:
    server = start_probe(C2C_REDIS_URL=redis_server.url, C2C_REDIS_TIMEOUT="1")
    get(server, "/probe/set?value=before")
    wait_until(lambda: set(values(server).values()) == {"before"}, 2, "every worker gets the value")
    redis_server.stop()
    started = time.monotonic()
    assert get(server, "/probe/set?value=while-away")["value"] == "while-away"  # applied here
    assert time.monotonic() - started < 2
    redis_server.start()
    get(server, "/probe/set?value=after")
    workers = server.worker_pids()

    def every_worker_has_it() -> bool:
        seen = values(server)
        return set(seen) == workers and set(seen.values()) == {"after"}

    wait_until(every_worker_has_it, 10, "every worker listens again and has the value")
    assert "is unreachable" in server.log()


def test_an_unreachable_redis_at_start_leaves_the_app_serving(
    start_server: StartServer, probe_ini: Path
) -> None:
    env = {
        "PYTHONPATH": str(REPO),
        "C2C_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "C2C_REDIS_TIMEOUT": "1",
    }
    server = start_server(env=env, config_file=probe_ini, workers=2)
    started = time.monotonic()
    assert get(server, "/probe/set?value=local")["value"] == "local"
    assert time.monotonic() - started < 2
    assert "cannot listen on Redis" in server.log()


# A stalled Redis: paused with SIGSTOP (a frozen VM, a long fork for a snapshot), then resumed.


def stored_value(server: RedisServer, prefix: str) -> str | None:
    """Return the probe value stored in Redis (the state a worker started later replays)."""
    with redis.Redis.from_url(server.url, socket_timeout=2) as client:
        raw = client.hget(f"{prefix}:state", orjson.dumps(["probe_value", "value"]))
    return None if raw is None else str(orjson.loads(raw)["params"]["value"])


@pytest.fixture
def paused_probe(
    start_probe: Callable[..., AppServer], redis_server: RedisServer
) -> tuple[AppServer, RedisServer, str]:
    """The probe app on 2 workers and a private Redis (default timeout), every worker at ``before``."""
    prefix = f"test_{uuid.uuid4().hex}"
    server = start_probe(workers=2, C2C_REDIS_URL=redis_server.url, C2C_BROADCAST_PREFIX=prefix)
    get(server, "/probe/set?value=before")
    wait_until(lambda: set(values(server).values()) == {"before"}, 5, "every worker gets the value")
    return server, redis_server, prefix


def test_a_change_while_redis_is_paused_answers_within_a_second(
    paused_probe: tuple[AppServer, RedisServer, str],
) -> None:
    server, redis_server, _ = paused_probe
    with redis_server.paused():
        durations = []
        for value in ("first", "second", "third"):
            started = time.monotonic()
            assert get(server, f"/probe/set?value={value}")["value"] == value  # applied by that worker
            durations.append(time.monotonic() - started)
    print(f"answer times while Redis is paused: {', '.join(f'{d:.3f}s' for d in durations)}")
    assert max(durations) < 1, durations


# 11 s: longer than the 10 s after which redis-py checks an idle connection with a PING first.
@pytest.mark.parametrize("idle", [0.0, 11.0], ids=["at once", "after 11s"])
def test_every_worker_and_the_stored_state_converge_after_a_pause(
    paused_probe: tuple[AppServer, RedisServer, str], idle: float
) -> None:
    server, redis_server, prefix = paused_probe
    with redis_server.paused():
        time.sleep(idle)
        get(server, "/probe/set?value=while-paused")
        time.sleep(1)
    resumed = time.monotonic()
    workers = server.worker_pids()

    def converged() -> bool:
        seen = values(server)
        return (
            set(seen) == workers
            and set(seen.values()) == {"while-paused"}
            and stored_value(redis_server, prefix) == "while-paused"
        )

    wait_until(converged, 15, "every worker and Redis have the value set while Redis was paused")
    print(f"converged {time.monotonic() - resumed:.2f}s after SIGCONT (set {idle}s into the pause)")
    assert time.monotonic() - resumed < CONVERGENCE
    assert server.worker_pids() == workers  # no worker was restarted for it


def test_the_last_change_made_while_redis_was_paused_wins(
    paused_probe: tuple[AppServer, RedisServer, str],
) -> None:
    server, redis_server, prefix = paused_probe
    with redis_server.paused():
        for value in ("first", "second", "third", "last"):
            get(server, f"/probe/set?value={value}")
    workers = server.worker_pids()

    def converged() -> bool:
        seen = values(server)
        return set(seen) == workers and set(seen.values()) == {"last"}

    wait_until(converged, 15, "every worker has the last value")
    time.sleep(2)  # nothing older arrives later
    assert set(values(server).values()) == {"last"}
    assert stored_value(redis_server, prefix) == "last"


def test_every_worker_and_the_stored_state_converge_after_a_restart(
    paused_probe: tuple[AppServer, RedisServer, str],
) -> None:
    server, redis_server, prefix = paused_probe
    redis_server.stop()
    try:
        get(server, "/probe/set?value=while-down")
    finally:
        redis_server.start()  # empty: it keeps nothing on disk
    restarted = time.monotonic()
    workers = server.worker_pids()

    def converged() -> bool:
        seen = values(server)
        return (
            set(seen) == workers
            and set(seen.values()) == {"while-down"}
            and stored_value(redis_server, prefix) == "while-down"
        )

    wait_until(converged, 15, "every worker and Redis have the value set while Redis was down")
    print(f"converged {time.monotonic() - restarted:.2f}s after Redis was started again")
    assert time.monotonic() - restarted < CONVERGENCE
