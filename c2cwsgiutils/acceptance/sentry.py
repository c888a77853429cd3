"""A stand-in for Sentry's ingestion endpoint, to read back the events an app under test sends.

::

    with SentryReceiver() as sentry:
        server = AppServer(ini, env={"SENTRY_URL": sentry.dsn})
        ...
        events = sentry.wait_for_events(1)

It parses sentry-sdk's envelopes (gzip or not) and keeps every event, and every request body as
received (decompressed) for checks on the raw bytes. ``hang()`` makes it accept connections and
never answer, as a Sentry that is stuck; ``answer()`` makes it answer again.
"""

import gzip
import http.server
import json
import threading
import time
import zlib
from typing import Any, Self

from c2cwsgiutils.acceptance.utils import BackgroundService


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Return the items of a Sentry envelope as ``(item header, payload)``."""
    _, _, rest = body.partition(b"\n")  # the envelope's own header: the DSN, the event ID...
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        if not header_line.strip():
            continue
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        items.append((header, payload))
    return items


class SentryReceiver(BackgroundService):
    """An HTTP server on a free loopback port that answers like Sentry's envelope endpoint."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._answering = threading.Event()
        self._answering.set()
        self._closing = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not receiver._answering.is_set():
                    # Stuck: hold the connection open without a word until told otherwise.
                    while not receiver._answering.wait(0.1) and not receiver._closing.is_set():
                        pass
                    if receiver._closing.is_set():
                        return
                receiver._receive(body, self.headers.get("Content-Encoding", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: the test reads the events, not a log."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.dsn = f"http://public@127.0.0.1:{self.port}/1"
        # A short poll: stopping waits for it, and tests start a receiver per case.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _receive(self, body: bytes, encoding: str) -> None:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        events = [
            json.loads(payload) for header, payload in parse_envelope(body) if header.get("type") == "event"
        ]
        with self._lock:
            self.bodies.append(body)
            self.events.extend(events)

    def hang(self) -> None:
        """Accept requests and never answer them, until :meth:`answer`."""
        self._answering.clear()

    def answer(self) -> None:
        """Answer requests again (the held ones too)."""
        self._answering.set()

    def wait_for_events(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` events arrived and return them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.events) >= count:
                    return list(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.events)} Sentry events after {timeout}s, expected {count}")
            time.sleep(0.02)

    def raw(self) -> bytes:
        """Return every envelope received, decompressed, joined."""
        with self._lock:
            return b"\n".join(self.bodies)

    def start(self) -> Self:
        """Start serving."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, letting go of held requests."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
