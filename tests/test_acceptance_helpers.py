"""The test helpers of c2cwsgiutils.acceptance (UDP receiver, free port, waiting), on real sockets."""

import socket

import pytest

from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.server import free_port
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import retry, retry_timeout, wait_until, wait_url
from testing.fixtures import StartServer


def send(receiver: UdpReceiver, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, (receiver.host, receiver.port))


def test_udp_receiver_records_datagrams(udp_receiver: UdpReceiver) -> None:
    send(udp_receiver, b"one")
    send(udp_receiver, b"two")
    assert udp_receiver.wait_for(lambda data: data == b"two") == b"two"
    assert udp_receiver.received() == [b"one", b"two"]


def test_udp_receiver_address_is_host_and_port(udp_receiver: UdpReceiver) -> None:
    host, port = udp_receiver.address.split(":")
    assert (host, int(port)) == ("127.0.0.1", udp_receiver.port)


def test_udp_receiver_wait_for_times_out(udp_receiver: UdpReceiver) -> None:
    send(udp_receiver, b"other")
    with pytest.raises(TimeoutError, match="no matching datagram"):
        udp_receiver.wait_for(lambda data: data == b"never", timeout=0.3)


def test_free_port_can_be_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_retry_returns_the_first_success() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return "done"

    assert retry(flaky, timeout=5, interval=0.01) == "done"
    assert len(attempts) == 3


def test_retry_times_out_with_the_last_error() -> None:
    def never() -> None:
        raise ValueError("still broken")

    with pytest.raises(TimeoutError) as raised:
        retry(never, timeout=0.2, interval=0.05, what="the thing")
    assert str(raised.value).startswith("the thing: still failing after 0.2s (")
    assert str(raised.value).endswith("attempts): ValueError: still broken")
    assert isinstance(raised.value.__cause__, ValueError)


def test_retry_lets_other_errors_through() -> None:
    def wrong() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry(wrong, timeout=5, exceptions=(ConnectionError,))


def test_wait_until_returns_the_true_value_or_times_out() -> None:
    values = iter([0, None, "yes"])
    assert wait_until(lambda: next(values), timeout=5, interval=0.01, what="a value") == "yes"
    with pytest.raises(TimeoutError, match=r"^nothing: not true after 0.1s$"):
        wait_until(lambda: False, timeout=0.1, interval=0.02, what="nothing")


def test_wait_url_waits_for_an_expected_status(start_server: StartServer) -> None:
    server = start_server(workers=1)
    assert wait_url(server.url("/api/ping"), timeout=10).json() == {"pong": True}
    assert wait_url(server.url("/nowhere"), timeout=10, expected_status={404}).status_code == 404
    with pytest.raises(
        TimeoutError, match=r"/nowhere: still failing after 0.5s .*AssertionError: status 404"
    ):
        wait_url(server.url("/nowhere"), timeout=0.5)


def test_wait_url_takes_the_timeout_positionally(start_server: StartServer) -> None:
    """The original's ``wait_url(url, timeout)``."""
    server = start_server(workers=1)
    assert wait_url(server.url("/api/ping"), 10).json() == {"pong": True}
    with pytest.raises(TimeoutError, match=r"/nowhere: still failing after 0.3s "):
        wait_url(server.url("/nowhere"), 0.3)


def test_retry_timeout_returns_the_first_true_value() -> None:
    results = iter([None, 0, "ready"])

    def what() -> str | int | None:
        value = next(results)
        if value is None:
            raise ConnectionError("refused")
        return value

    assert retry_timeout(what, 5, 0.01) == "ready"


def test_retry_timeout_fails_as_an_assertion_error_saying_the_last_error() -> None:
    def broken() -> bool:
        raise ValueError("still broken")

    with pytest.raises(AssertionError) as raised:
        retry_timeout(broken, timeout=0.2, interval=0.05)
    assert isinstance(raised.value, TimeoutError)
    message = str(raised.value)
    assert message.startswith("test_retry_timeout_fails_as_an_assertion_error_saying_the_last_error.<locals>")
    assert message.endswith("attempts), ValueError: still broken")
    with pytest.raises(AssertionError, match=r"no success after 0.1s \(\d+ attempts\), it returned False$"):
        retry_timeout(lambda: False, timeout=0.1, interval=0.02)


def test_the_originals_module_names() -> None:
    assert utils.DEFAULT_TIMEOUT == 60
    assert utils.in_docker() is False
    assert utils.skipIfCI.name == "skipif"
