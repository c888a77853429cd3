"""Redis through Sentinel: a master, a replica and three Sentinels of the test's own, and a failover."""

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import webtest
from pyramid.config import Configurator

from c2cwsgiutils.acceptance.server import AppServer, free_port
from c2cwsgiutils.acceptance.utils import wait_until
from c2cwsgiutils.broadcast.core import Broadcaster, InProcessTransport
from c2cwsgiutils.broadcast.redis_connection import (
    RedisSentinelSettings,
    RedisTarget,
    make_client,
    parse_sentinels,
    target,
)
from c2cwsgiutils.config_utils import SettingError
from c2cwsgiutils.health_check import HealthCheck
from testing.fixtures import StartServer
from tests.apps import sentinel as sentinel_app

pytestmark = [pytest.mark.sentinel, pytest.mark.redis, pytest.mark.server]

REPO = Path(__file__).parent.parent
SERVICE = "c2cmaster"
SECRET = "sentinel-test-secret"  # noqa: S105 (a test's own)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


class SentinelGroup:
    """A Redis master, its replica and three Sentinels on free loopback ports, in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def _redis(self, port: int, *more: str) -> None:
        data = self.directory / str(port)
        data.mkdir()
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(data),
        ]
        with (self.directory / f"{port}.log").open("wb") as log:
            self.processes[port] = subprocess.Popen(
                [*command, "--appendonly", "no", *more], stdout=log, stderr=subprocess.STDOUT
            )

    def start(self) -> None:
        self._redis(self.master_port)
        self._redis(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        sentinel = shutil.which("redis-sentinel")
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n",
                encoding="utf-8",
            )
            command = [sentinel, str(conf)] if sentinel else ["redis-server", str(conf), "--sentinel"]
            with (self.directory / f"{port}.log").open("wb") as log:
                self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        for port in [self.master_port, self.replica_port, *self.sentinel_ports]:
            wait_until(functools.partial(_answers, port), 10, f"redis on {port} answers")
        wait_until(self._ready, 30, "the Sentinels know the replica and each other")

    def sentinel(self, port: int) -> Any:
        return redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1, decode_responses=True)

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            client = self.sentinel(port)
            if not client.sentinel_slaves(SERVICE) or len(client.sentinel_sentinels(SERVICE)) < 2:
                return False
        return True

    def master(self, port: int) -> int:
        """Return the port of the master as the Sentinel on ``port`` sees it."""
        return int(self.sentinel(port).sentinel_get_master_addr_by_name(SERVICE)[1])

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path)
    try:
        group.start()
        yield group
    finally:
        group.close()


def levels(server: AppServer) -> dict[int, str]:
    response = requests.get(server.url("/levels"), timeout=15)
    response.raise_for_status()
    return {answer["pid"]: answer["level"] for answer in response.json()["answers"]}


def set_level(server: AppServer, level: str) -> dict[str, Any]:
    response = requests.get(
        server.url("/c2c/logging/level"),
        params={"name": sentinel_app.LOGGER, "level": level},
        headers={"X-API-Key": SECRET},
        timeout=15,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_a_log_level_reaches_every_worker_through_sentinel_across_a_failover(
    sentinel_group: SentinelGroup, start_server: StartServer, tmp_path: Path
) -> None:
    ini = tmp_path / "sentinel.ini"
    ini.write_text(sentinel_app.INI, encoding="utf-8")
    env = {
        "PYTHONPATH": str(REPO),
        "C2C_REDIS_SENTINELS": sentinel_group.sentinels,
        "C2C_REDIS_SERVICENAME": SERVICE,
        "C2C_REDIS_DB": "3",
        "C2C_REDIS_TIMEOUT": "1",
        "LOG_VIEW_SECRET": SECRET,
    }
    server = start_server(env=env, config_file=ini, workers=3)
    workers = server.worker_pids()
    wait_until(lambda: set(levels(server)) == workers, 20, "every worker answers through Redis")
    set_level(server, "DEBUG")
    wait_until(lambda: set(levels(server).values()) == {"DEBUG"}, 10, "every worker has DEBUG")
    # The stored level is in the master's database 3 (replicated to the replica).
    master = redis.Redis(port=sentinel_group.master_port, db=3)
    assert master.exists("c2cwsgiutils_broadcast:state")

    sentinel_group.kill(sentinel_group.master_port)
    wait_until(
        lambda: all(
            sentinel_group.master(port) == sentinel_group.replica_port
            for port in sentinel_group.sentinel_ports
        ),
        60,
        "the Sentinels promote the replica",
    )
    set_level(server, "ERROR")

    def every_worker_has_error() -> bool:
        seen = levels(server)
        return set(seen) == workers and set(seen.values()) == {"ERROR"}

    wait_until(every_worker_has_error, 30, "every worker gets the level set after the failover")
    new_master = redis.Redis(port=sentinel_group.replica_port, db=3)
    assert any(b"ERROR" in value for value in new_master.hvals("c2cwsgiutils_broadcast:state"))
    # A worker started after the failover applies the stored level too.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    (replacement,) = wait_until(lambda: server.worker_pids() - workers, 20, "gunicorn replaces the worker")
    wait_until(lambda: levels(server).get(replacement) == "ERROR", 20, "the new worker has ERROR")


def test_make_client_asks_the_sentinels_for_the_master(sentinel_group: SentinelGroup) -> None:
    client = make_client(
        RedisTarget(sentinels=parse_sentinels(sentinel_group.sentinels), service_name=SERVICE, db=2), 1
    )
    client.set("where", "here")
    assert redis.Redis(port=sentinel_group.master_port, db=2).get("where") == b"here"


def test_the_health_check_pings_the_master_through_the_sentinels(sentinel_group: SentinelGroup) -> None:
    config = Configurator(
        settings={"c2c.redis_sentinels": sentinel_group.sentinels, "c2c.redis_servicename": SERVICE}
    )
    HealthCheck(config)
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/c2c/health_check").json["successes"] == ["redis"]
    sentinel_group.kill(sentinel_group.master_port)
    # Until the Sentinels promote the replica, the master they name does not answer.
    wait_until(
        lambda: (
            app.get("/c2c/health_check", expect_errors=True).status_int == 200
            and sentinel_group.master(sentinel_group.sentinel_ports[0]) == sentinel_group.replica_port
        ),
        30,
        "the health check answers through the promoted replica",
    )


def test_parse_sentinels() -> None:
    assert parse_sentinels(" a:1, [::1]:26379 ,") == (("a", 1), ("::1", 26379))
    for bad in ("a", "a:b", ":1", "a:0", ","):
        with pytest.raises(ValueError, match="host:port"):
            parse_sentinels(bad)


def test_sentinels_need_a_service_name() -> None:
    with pytest.raises(SettingError, match="C2C_REDIS_SERVICENAME"):
        target(None, RedisSentinelSettings(sentinels=(("a", 1),)))


def test_sentinels_win_over_the_url_and_describe_hides_nothing_secret() -> None:
    class Broadcast:
        redis_url = "redis://user:pw@host:6379/0"

    chosen = target(Broadcast(), RedisSentinelSettings(sentinels=(("s", 26379),), service_name="m", db=1))
    assert chosen == RedisTarget(sentinels=(("s", 26379),), service_name="m", db=1)
    assert chosen.describe() == "sentinel://s:26379/m/1"
    assert target(Broadcast(), RedisSentinelSettings()).describe() == "redis://user:***@host:6379/0"  # type: ignore[union-attr]
    assert target(None, RedisSentinelSettings()) is None


def test_a_broadcaster_made_before_a_fork_without_hook_takes_its_own_identity_when_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gunicorn master may import the app's module (its logging) before forking, without starting it."""
    broadcaster = Broadcaster()
    parent_id = broadcaster.instance_id
    monkeypatch.setattr(os, "getpid", lambda: 4_000_000)  # what the worker forked from it sees
    try:
        broadcaster.start("key", lambda _: InProcessTransport())
        assert broadcaster.instance_id != parent_id
        assert broadcaster.status()["pid"] == 4_000_000
    finally:
        monkeypatch.undo()
        broadcaster.reset()
