"""Outgoing ``requests`` calls: the default timeout and the metrics, under the real c2cwsgiutils_run."""

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from c2cwsgiutils import stats_pyramid
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.metrics.outgoing import parse_timeout
from testing.fixtures import StartServer
from tests.apps import make_app
from tests.apps import outgoing as outgoing_app

REPO = Path(__file__).parent.parent


class _Dependency(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_body(200, b"{}")


@pytest.fixture
def dependency() -> Iterator[str]:
    """A dependency that answers at once."""
    with stub_server(_Dependency) as url:
        yield url


@pytest.fixture
def hanging_dependency() -> Iterator[str]:
    """A dependency that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow"


@pytest.fixture
def server(start_server: StartServer, tmp_path: Path, udp_receiver: UdpReceiver) -> AppServer:
    ini = tmp_path / "outgoing.ini"
    ini.write_text(outgoing_app.INI, encoding="utf-8")
    env = {
        "PYTHONPATH": str(REPO),
        "C2C_REQUESTS_DEFAULT_TIMEOUT": "500ms",
        "STATSD_ADDRESS": udp_receiver.address,
        "C2C_PROMETHEUS": "true",
    }
    return start_server(env=env, config_file=ini, workers=1)


def call(server: AppServer, url: str, **params: str) -> requests.Response:
    response = requests.get(server.url("/call"), params={"url": url, **params}, timeout=30)
    response.raise_for_status()
    return response


def test_a_hanging_dependency_is_cut_by_the_default_timeout(
    server: AppServer, hanging_dependency: str
) -> None:
    answer = call(server, hanging_dependency).json()
    assert answer["status"] == "timeout"
    assert 0.4 < answer["seconds"] < 5


def test_a_call_with_its_own_timeout_keeps_it(server: AppServer, hanging_dependency: str) -> None:
    answer = call(server, hanging_dependency, timeout="2").json()
    assert answer["status"] == "timeout"
    assert 1.9 < answer["seconds"] < 6


def test_calls_are_measured_by_host_method_and_status(
    server: AppServer, dependency: str, hanging_dependency: str, udp_receiver: UdpReceiver
) -> None:
    response = call(server, f"{dependency}/some/path?secret=x")
    assert re.search(r'outgoing;dur=[0-9.]+;desc="1 calls"', response.headers["Server-Timing"])
    call(server, hanging_dependency)
    port = dependency.rsplit(":", 1)[1]
    hanging_port = hanging_dependency.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    udp_receiver.wait_for(lambda data: f"outgoing.127_0_0_1_{port}.GET.200:".encode() in data, 10)
    udp_receiver.wait_for(lambda data: f"outgoing.127_0_0_1_{hanging_port}.GET.timeout:".encode() in data, 10)
    metrics = requests.get(server.url("/c2c/metrics"), timeout=10).text
    labels = f'host="127.0.0.1:{port}",method="GET",status="200"'
    assert f"c2cwsgiutils_outgoing_request_duration_seconds_count{{{labels}}} 1.0" in metrics
    assert "some/path" not in metrics
    assert "secret" not in metrics
    assert not any(b"some" in data for data in udp_receiver.received())


def test_the_host_label_is_bounded() -> None:
    stats_pyramid.reset()
    hosts = {stats_pyramid.outgoing_host(f"http://host{index}.example/x?y=1") for index in range(150)}
    assert len(hosts) == stats_pyramid.MAX_HOSTS + 1
    assert "other" in hosts
    assert "host0.example" in hosts
    stats_pyramid.reset()


@pytest.mark.parametrize(("raw", "expected"), [("500ms", 0.5), ("off", None), ("12", 12.0)])
def test_parse_timeout(raw: str, expected: float | None) -> None:
    assert parse_timeout(raw) == expected


def test_parse_timeout_refuses_zero() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        parse_timeout("0")


def test_only_calls_made_while_serving_a_request_get_the_default() -> None:
    """In one process: the view's call is cut at 300 ms, the same call from a plain thread waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"

    def call_from_view(request: Any) -> dict[str, Any]:
        del request
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            requests.get(url)  # noqa: S113 (the default is the point)
        return {"seconds": time.monotonic() - started}

    app = make_app({"call": call_from_view}, settings={"c2c.requests_default_timeout": "300ms"})
    assert 0.2 < app.get("/call").json["seconds"] < 3
    outcome: list[BaseException] = []

    def call_from_thread() -> None:
        try:
            requests.get(url)  # noqa: S113
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=call_from_thread, daemon=True)
    thread.start()
    thread.join(1.5)
    assert thread.is_alive(), outcome  # no default timeout outside of a request
    listener.close()  # resets the queued connection: the thread's call ends
    thread.join(10)
    assert outcome
