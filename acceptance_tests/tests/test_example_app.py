"""The example app served by c2cwsgiutils_run (real gunicorn) on the local PostgreSQL."""

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from tests.fixtures import EXAMPLE_APP_INI


@pytest.fixture(scope="module")
def app(postgres_url: str) -> Iterator[AppServer]:
    """The example app on PostgreSQL through a plain postgresql:// URL (psycopg 3)."""
    with AppServer(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": postgres_url, "DEVELOPMENT": "0"}) as server:
        yield server


def get(app: AppServer, path: str, **kwargs: object) -> requests.Response:
    return requests.get(app.url(path), timeout=10, **kwargs)  # type: ignore[arg-type]


def test_ping(app: AppServer) -> None:
    assert get(app, "/api/ping").json() == {"pong": True}


def test_ops_index_is_under_c2c(app: AppServer) -> None:
    response = get(app, "/c2c/")
    assert response.status_code == 200
    assert response.json()["base_path"] == "/c2c"


def test_unknown_route_is_json_404(app: AppServer) -> None:
    response = get(app, "/no/such/page")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["status"] == 404


def test_unknown_ops_route_is_json_404(app: AppServer) -> None:
    assert get(app, "/c2c/nothing-here").json()["status"] == 404


def test_unexpected_error_is_json_500_without_stacktrace(app: AppServer) -> None:
    response = get(app, "/api/error")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert "stacktrace" not in body
    assert "failure on demand" not in response.text


def test_unexpected_error_is_logged_once_with_its_request_id(app: AppServer) -> None:
    request_id = f"accept-{uuid.uuid4()}"
    get(app, "/api/error", headers={"X-Request-ID": request_id})
    deadline = time.monotonic() + 5
    while request_id not in app.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    error_lines = [line for line in app.log().splitlines() if request_id in line and "ERROR" in line]
    assert len(error_lines) == 1
    assert "RuntimeError: failure on demand" in app.log()


def test_request_id_is_echoed(app: AppServer) -> None:
    assert get(app, "/api/ping", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"


def test_request_id_is_generated_when_absent(app: AppServer) -> None:
    uuid.UUID(get(app, "/api/ping").headers["X-Request-ID"])


def raw_get(app: AppServer, path: str, header_lines: bytes) -> list[bytes]:
    """Send a request byte for byte (requests refuses odd headers) and return the answer's lines."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: x\r\n"
            + header_lines
            + b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.split(b"\r\n")


# gunicorn itself refuses most control characters with a 400; these two get through to the app.
@pytest.mark.parametrize("control", [b"\t", b"\x85"])
def test_request_id_with_control_character_is_replaced(app: AppServer, control: bytes) -> None:
    lines = raw_get(app, "/api/ping", b"X-Request-ID: evil" + control + b"forged\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    echoed = [line for line in lines if line.lower().startswith(b"x-request-id:")]
    assert len(echoed) == 1
    uuid.UUID(echoed[0].split(b":", 1)[1].strip().decode())


def test_request_id_longer_than_200_is_replaced(app: AppServer) -> None:
    echoed = get(app, "/api/ping", headers={"X-Request-ID": "x" * 201}).headers["X-Request-ID"]
    uuid.UUID(echoed)


@pytest.mark.parametrize(
    ("status", "header", "value"),
    [
        ("401", "WWW-Authenticate", 'Basic realm="app"'),
        ("405", "Allow", "GET, HEAD"),
        ("503", "Retry-After", "10"),
    ],
)
def test_http_errors_keep_their_headers(app: AppServer, status: str, header: str, value: str) -> None:
    response = get(app, f"/api/error?status={status}")
    assert response.status_code == int(status)
    assert response.headers[header] == value
    assert response.json()["status"] == int(status)


def test_redirect_keeps_its_location(app: AppServer) -> None:
    response = get(app, "/api/error?status=302", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/api/ping")


def test_head_gets_no_body(app: AppServer) -> None:
    response = requests.head(app.url("/api/error"), timeout=10)
    assert response.status_code == 500
    assert response.content == b""


def test_duplicate_is_400_on_postgresql_with_psycopg3(app: AppServer) -> None:
    value = f"dup-{uuid.uuid4()}"
    first = requests.post(app.url("/api/hello"), json={"value": value}, timeout=10)
    second = requests.post(app.url("/api/hello"), json={"value": value}, timeout=10)
    assert first.status_code == 201
    assert second.status_code == 400
    assert "duplicate key value violates unique constraint" in second.json()["message"]


def test_psycopg2_url_keeps_working(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    with AppServer(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": url}, workers=1) as server:
        value = f"pg2-{uuid.uuid4()}"
        requests.post(server.url("/api/hello"), json={"value": value}, timeout=10)
        second = requests.post(server.url("/api/hello"), json={"value": value}, timeout=10)
        assert second.status_code == 400
        assert value in requests.get(server.url("/api/hello"), timeout=10).json()["values"]


def test_bad_json_is_400(app: AppServer) -> None:
    response = requests.post(app.url("/api/hello"), data=b"{not json", timeout=10)
    assert response.status_code == 400
    assert "expected a JSON body" in response.json()["message"]


def test_client_hanging_up_mid_body_is_logged_at_info(app: AppServer) -> None:
    log_before = len(app.log())
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"value": '
        )
    deadline = time.monotonic() + 10
    while "client disconnected" not in app.log()[log_before:] and time.monotonic() < deadline:
        time.sleep(0.05)
    new_log = app.log()[log_before:]
    lines = [line for line in new_log.splitlines() if "client disconnected" in line]
    assert lines, new_log
    assert all(" INFO " in line for line in lines)
    assert "Traceback" not in new_log
    assert " ERROR " not in new_log


def test_development_mode_returns_the_stacktrace(postgres_url: str) -> None:
    with AppServer(
        EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": postgres_url, "DEVELOPMENT": "1"}, workers=1
    ) as server:
        body = requests.get(server.url("/api/error"), timeout=10).json()
    assert body["message"] == "RuntimeError: failure on demand"
    assert any("failure on demand" in line for line in body["stacktrace"])
