"""The ops views read at most ops_views.MAX_BODY bytes of a body: a larger one is a 413, unread.

In-process, every ops route with every method and body (declared or chunked, signed in or not);
then a real gunicorn worker, whose memory must not grow with what a client sends.
"""

import http.client
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyramid.config import Configurator
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request

from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.health_check import HealthCheck as HealthChecks
from c2cwsgiutils.ops_views import MAX_BODY
from testing.fixtures import StartServer

SECRET = "body-limit-secret"  # noqa: S105 (made up)
SETTINGS = {
    "c2c.log_view_secret": SECRET,
    "c2c.sql_profiler_secret": SECRET,
    "c2c.debug_view_secret": SECRET,
    "c2c.stats_view": "1",
    "c2c.stats_view_secret": SECRET,
}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


class CountingInput:
    """A request body of ``size`` bytes that counts how much of it is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        left = self.size - self.read_bytes
        count = left if size is None or size < 0 else min(size, left)
        self.read_bytes += count
        return b"a" * count

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)


@pytest.fixture(scope="module")
def app() -> webtest.TestApp:
    """Every ops view on (the health check with a check), one secret for all."""
    config = Configurator(settings=SETTINGS)
    config.include("c2cwsgiutils.pyramid")
    HealthChecks(config).add_custom_check("always", lambda request: None)
    return webtest.TestApp(config.make_wsgi_app())


def ops_paths(app: webtest.TestApp) -> list[str]:
    """Return the path of every route under /c2c (the index as /c2c/)."""
    mapper = app.app.registry.getUtility(IRoutesMapper)
    paths = [route.pattern.replace("{slash:/?}", "/") for route in mapper.get_routes()]
    return sorted(path for path in paths if path.startswith("/c2c") and "{" not in path)


def send(
    app: webtest.TestApp,
    path: str,
    method: str,
    *,
    body: CountingInput,
    declared: bool,
    headers: dict[str, str],
) -> int:
    """Send ``body`` with its Content-Length (``declared``) or chunked; return the status."""
    request = Request.blank(path, method=method, headers=headers)
    request.environ["wsgi.input"] = body
    if declared:
        request.environ["CONTENT_LENGTH"] = str(body.size)
    else:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        request.environ["wsgi.input_terminated"] = True
    status: int = respond(app, request).status_int
    return status


def respond(app: webtest.TestApp, request: Request) -> Any:
    """Return the app's response, closed as a WSGI server closes it (the request ID is forgotten then)."""
    response = request.get_response(app.app)
    close = getattr(response.app_iter, "close", None)
    if close is not None:
        close()
    return response


_CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "text/plain",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    size=st.integers(min_value=MAX_BODY + 1, max_value=50 * MAX_BODY),
    declared=st.booleans(),
    headers=st.fixed_dictionaries(
        {"Content-Type": _CONTENT_TYPES, "Sec-Fetch-Site": st.just("same-origin")},
        optional={"X-API-Key": st.just(SECRET)},
    ),
)
def test_no_ops_view_reads_a_body_over_the_limit(
    app: webtest.TestApp, clean_ops_state: None, data: st.DataObject, **case: Any
) -> None:
    """Over every ops route, method, size, framing and content type, signed in or not."""
    path = data.draw(st.sampled_from(ops_paths(app)))
    method = case.pop("method")
    body = CountingInput(case.pop("size"))
    status = send(app, path, method, body=body, **case)
    assert body.read_bytes <= (0 if case["declared"] else MAX_BODY + 1)
    # 413 from every view that takes the method; a 404 only where no view does, body or not.
    if status != 413:
        assert status == 404, status
        assert send(app, path, method, body=CountingInput(0), **case) == 404


def test_every_ops_view_is_covered(app: webtest.TestApp) -> None:
    """The property above runs over every ops route, the page's sign-in and the index among them."""
    paths = ops_paths(app)
    assert {
        "/c2c/",
        "/c2c/page/login",
        "/c2c/page/logout",
        "/c2c/health_check",
        "/c2c/logging/level",
        "/c2c/debug/headers",
    } <= set(paths)
    assert len(paths) >= 14, paths


def test_the_413_is_json_with_cors(app: webtest.TestApp, clean_ops_state: None) -> None:
    response = app.post("/c2c/page/login", "secret=" + "x" * MAX_BODY, headers=SAME_ORIGIN, status=413)
    assert response.json["status"] == 413
    assert str(MAX_BODY) in response.json["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_at_the_limit_still_signs_in(
    app: webtest.TestApp, clean_ops_state: None, declared: bool
) -> None:
    form = f"secret={SECRET}&pad=".encode()
    content = form + b"p" * (MAX_BODY - len(form))
    request = Request.blank(
        "/c2c/page/login",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", **SAME_ORIGIN},
        environ={"wsgi.url_scheme": "https"},
    )
    request.body = content
    if not declared:
        request.environ.pop("CONTENT_LENGTH")
        request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        request.environ["wsgi.input_terminated"] = True
    response = respond(app, request)
    assert response.status_int == 303
    assert "c2c_ops_session=" in response.headers["Set-Cookie"]


# A real gunicorn worker.

SENT = 64 * 1024 * 1024  # what the client sends at most: enough to show in the worker's memory
DECLARED = 400 * 1000 * 1000  # what it announces, as in the report


def memory_kib(pid: int, field: str) -> int:
    """Return a memory figure of a process (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def post_streaming(
    server: AppServer, path: str, chunked: bool
) -> tuple[http.client.HTTPResponse, bytes, float]:
    """POST a large body while reading the answer; return it, its body and how long it took."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {DECLARED}"
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
        ).encode()
    )
    piece = b"secret=" + b"s" * (64 * 1024 - 7)

    def send_body() -> None:
        frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        try:
            for _ in range(SENT // len(piece)):
                sock.sendall(frame)
        except OSError:
            pass  # the server answered and closed: nothing more is read

    started = time.monotonic()
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
    finally:
        elapsed = time.monotonic() - started
        sock.close()
        sender.join(30)
    return response, body, elapsed


@pytest.fixture
def worker(start_server: StartServer) -> tuple[AppServer, int]:
    """The example app with one worker, warmed up by a sign-in that fails; and that worker's pid."""
    server = start_server(workers=1)
    (pid,) = server.worker_pids()
    for _ in range(3):
        requests.post(
            server.url("/c2c/page/login"), data={"secret": "wrong"}, headers=SAME_ORIGIN, timeout=10
        )
    return server, pid


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_body_to_the_sign_in_is_refused_without_growing_the_worker(
    worker: tuple[AppServer, int], chunked: bool
) -> None:
    server, pid = worker
    before = memory_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    response, body, elapsed = post_streaming(server, "/c2c/page/login", chunked)
    assert response.status == 413, body[:200]
    assert response.getheader("Content-Type", "").startswith("application/json")
    assert elapsed < 2.0
    peak = memory_kib(pid, "VmHWM")
    assert peak - before < 5 * 1024, (before, peak)
    assert memory_kib(pid, "VmRSS") - before < 5 * 1024
