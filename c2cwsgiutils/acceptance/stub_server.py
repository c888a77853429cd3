"""A stub HTTP server on loopback, for a test that needs a dependency (or a proxy) of its own.

For example, a dependency that answers ``{}``: a :class:`QuietHandler` subclass whose ``do_GET``
calls ``self.send_body(200, b"{}")``, served by ``with stub_server(Dependency) as url:``.
"""

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not write a line on stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""
        del format, args

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Answer ``status`` with ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stub_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port from a thread; yield its base URL (no trailing ``/``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits for it, and tests start a stub per case.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="c2cwsgiutils-stub-server",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
