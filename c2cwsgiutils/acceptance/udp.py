"""A real UDP receiver on loopback, for tests of what is sent to statsd or syslog."""

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Self

from c2cwsgiutils.acceptance.utils import BackgroundService


class UdpReceiver(BackgroundService):
    """Collect the datagrams sent to ``127.0.0.1:{port}`` in a background thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.settimeout(0.1)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._datagrams: queue.Queue[bytes] = queue.Queue()
        self._received: list[bytes] = []
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._receive, name=f"udp-receiver-{self.port}", daemon=True)

    @property
    def address(self) -> str:
        """Return ``host:port``, as settings such as ``STATSD_ADDRESS`` want it."""
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        """Start receiving."""
        self._running.set()
        self._thread.start()
        return self

    def _receive(self) -> None:
        while self._running.is_set():
            try:
                data, _ = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self._datagrams.put(data)

    def received(self) -> list[bytes]:
        """Return every datagram received so far."""
        while True:
            try:
                self._received.append(self._datagrams.get_nowait())
            except queue.Empty:
                return list(self._received)

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 5.0) -> bytes:
        """Return the first datagram (received so far or within ``timeout``) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for datagram in self.received():
                if predicate(datagram):
                    return datagram
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching datagram in {timeout}s; got {self.received()!r}")
            with contextlib.suppress(queue.Empty):
                self._received.append(self._datagrams.get(timeout=remaining))

    def close(self) -> None:
        """Stop receiving and close the socket."""
        self._running.clear()
        if self._thread.is_alive():
            self._thread.join()
        self._socket.close()
