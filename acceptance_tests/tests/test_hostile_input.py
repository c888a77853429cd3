"""Hostile and broken input against the example app under real gunicorn.

Requests are written byte for byte on a socket: HTTP client libraries refuse to send most of
them. The app runs with LOG_LEVEL=DEBUG so that tests can wait for what it logs.
"""

import socket
import struct
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils.acceptance.server import AppServer
from tests.fixtures import EXAMPLE_APP_INI


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    database = Path(tmp_path_factory.mktemp("hostile")) / "app.sqlite"
    env = {"SQLALCHEMY_URL": f"sqlite:///{database}", "LOG_LEVEL": "DEBUG", "DEVELOPMENT": "0"}
    with AppServer(EXAMPLE_APP_INI, env=env, workers=2) as server:
        yield server


def exchange(app: AppServer, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Send a raw request; return the status, the header lines and the body."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    headers = [(name, value) for name, _, value in (line.partition(b":") for line in header_lines)]
    return int(status_line.split()[1]), headers, body


def raw_request(
    method: bytes,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: test", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    return next((value.strip() for name, value in headers if name.lower() == b"content-type"), b"")


@pytest.mark.parametrize("method", [b"GET", b"POST", b"DELETE", b"HEAD"])
@pytest.mark.parametrize("path", [b"/%ff", b"/api/%ff", b"/c2c/%c3%28", b"/%ff?x=%ff"])
def test_path_that_is_not_utf8_is_json_400(app: AppServer, method: bytes, path: bytes) -> None:
    status, headers, body = exchange(app, raw_request(method, path))
    assert status == 400
    assert content_type(headers).startswith(b"application/json")
    assert body == b"" if method == b"HEAD" else b"not valid UTF-8" in body


@pytest.mark.parametrize(
    ("content_type_value", "body"),
    [
        (b"application/json", b"{not json"),
        (b"application/json", b"\xff\xfe\x00"),
        (b"application/json; charset=nope", b'{"value": "x"}'),
    ],
)
def test_body_that_does_not_parse_is_json_400(app: AppServer, content_type_value: bytes, body: bytes) -> None:
    status, headers, _ = exchange(
        app, raw_request(b"POST", b"/api/hello", [(b"Content-Type", content_type_value)], body)
    )
    assert status == 400
    assert content_type(headers).startswith(b"application/json")


def test_reset_while_the_body_is_read_is_499_at_info(app: AppServer) -> None:
    request_id = f"reset-{uuid.uuid4()}"
    log_before = len(app.log())
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    sock.sendall(
        b"POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: " + request_id.encode() + b'\r\nContent-Length: 1000\r\n\r\n{"value": '
    )
    deadline = time.monotonic() + 10
    while f"reading the body of request {request_id}" not in app.log()[log_before:]:
        assert time.monotonic() < deadline, app.log()[log_before:]
        time.sleep(0.02)
    # Linger 0: close() sends a TCP reset instead of a clean end of stream.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    while "client disconnected" not in app.log()[log_before:]:
        assert time.monotonic() < deadline, app.log()[log_before:]
        time.sleep(0.02)
    new_log = app.log()[log_before:]
    line = next(line for line in new_log.splitlines() if "client disconnected" in line)
    assert line.split()[2] == "INFO", line
    assert "Traceback" not in new_log
    assert " ERROR " not in new_log


# The sweep: random methods, paths, query strings, request IDs, bodies and content types.
SEGMENTS = [
    "api",
    "ping",
    "hello",
    "c2c",
    "",
    "..",
    "%2e%2e",
    "%ff",
    "%00",
    "%0a",
    "%c3%28",
    "%e2%98%83",
    "x y",
]
CONTENT_TYPES = [
    None,
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data",
    b"multipart/form-data; boundary=zz",
    b"text/plain; charset=nope",
    b"text/plain; charset=utf-8",
    b"application/json; charset=latin-1",
]
percent_bytes = st.binary(max_size=6).map(lambda data: "".join(f"%{byte:02x}" for byte in data).encode())
query_part = st.one_of(st.sampled_from([b"a=1", b"secret=x", b"q=%ff", b"=", b"&&", b"q=%"]), percent_bytes)
# What an HTTP/1.1 field value may hold: visible ASCII, space, tab and obs-text.
header_text = st.binary(max_size=40).map(
    lambda data: bytes(byte for byte in data if byte == 9 or 32 <= byte < 127 or byte >= 128).strip()
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.one_of(
        st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"]),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=8).map(str.encode),
    ),
    segments=st.lists(st.one_of(st.sampled_from(SEGMENTS).map(str.encode), percent_bytes), max_size=4),
    query=st.lists(query_part, max_size=3),
    request_id=header_text,
    content_type_value=st.sampled_from(CONTENT_TYPES),
    body=st.one_of(st.binary(max_size=200), st.sampled_from([b'{"value": 1}', b"{", b"a=%ff", b"--zz\r\n"])),
)
def test_hostile_sweep_never_gets_a_500_an_html_body_or_a_traceback(  # noqa: PLR0917 (hypothesis arguments)
    app: AppServer,
    method: bytes,
    segments: list[bytes],
    query: list[bytes],
    request_id: bytes,
    content_type_value: bytes | None,
    body: bytes,
) -> None:
    target = b"/" + b"/".join(segment.replace(b" ", b"%20") for segment in segments)
    if query:
        target += b"?" + b"&".join(query)
    headers = [(b"X-Request-ID", request_id)] if request_id else []
    if content_type_value is not None:
        headers.append((b"Content-Type", content_type_value))
    log_before = len(app.log())
    status, response_headers, response_body = exchange(app, raw_request(method, target, headers, body))
    assert status < 500, (target, response_body)
    if response_body:
        assert content_type(response_headers).startswith(b"application/json"), (target, response_body)
    for name, value in response_headers:
        assert all(32 <= byte < 127 or byte == 9 for byte in name + value), (name, value)
    assert "Traceback" not in app.log()[log_before:]
