"""The test helpers of c2cwsgiutils.acceptance (UDP receiver, free port, waiting), on real sockets."""

import socket

import pytest

from c2cwsgiutils.acceptance.server import free_port
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import retry, wait_until, wait_url
from tests.fixtures import StartServer


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
