"""The test helpers of c2cwsgiutils.acceptance, on real sockets."""

import socket

import pytest

from c2cwsgiutils.acceptance.server import free_port
from c2cwsgiutils.acceptance.udp import UdpReceiver


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
