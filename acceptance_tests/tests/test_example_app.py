"""The example app, wherever the suite runs it (the c2cwsgiutils pytest plugin's composition).

`make test` serves it with c2cwsgiutils_run on the local PostgreSQL; `make acceptance-image` runs its
image; ``--c2c-app-url`` tests a running one (the tests that read its logs are then skipped).
"""

import socket
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from c2cwsgiutils.acceptance.composition import BaseComposition, ProcessComposition
from c2cwsgiutils.acceptance.connection import Connection
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import EXAMPLE_APP_INI


def test_ping(connection: Connection) -> None:
    assert connection.get_json("/api/ping") == {"pong": True}


def test_ops_index_is_under_c2c(connection: Connection) -> None:
    assert connection.get_json("/c2c/")["base_path"] == "/c2c"


def test_unknown_route_is_json_404(connection: Connection) -> None:
    response = connection.get_raw("/no/such/page", expected_status=404)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["status"] == 404


def test_unknown_ops_route_is_json_404(connection: Connection) -> None:
    assert connection.get_json("/c2c/nothing-here", expected_status=404)["status"] == 404


def test_unexpected_error_is_json_500_without_stacktrace(connection: Connection) -> None:
    response = connection.get_raw("/api/error", expected_status=500)
    body = response.json()
    assert body["status"] == 500
    assert "stacktrace" not in body
    assert "failure on demand" not in response.text


def test_unexpected_error_is_logged_once_with_its_request_id(
    connection: Connection, composition: BaseComposition
) -> None:
    connection.get("/api/error", expected_status=500)
    request_id = connection.last_request_id
    assert request_id is not None
    wait_until(lambda: request_id in composition.logs(), what=f"a log line with {request_id}", timeout=5)
    error_lines = [line for line in composition.logs().splitlines() if request_id in line and "ERROR" in line]
    assert len(error_lines) == 1
    assert "RuntimeError: failure on demand" in composition.logs()


def test_request_id_is_echoed(connection: Connection) -> None:
    assert connection.get_raw("/api/ping", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"


def test_request_id_is_generated_when_absent(app_url: str) -> None:
    # requests directly: the Connection always sends an ID.
    uuid.UUID(requests.get(f"{app_url}/api/ping", timeout=10).headers["X-Request-ID"])


def raw_get(app_url: str, path: str, header_lines: bytes) -> list[bytes]:
    """Send a request byte for byte (requests refuses odd headers) and return the answer's lines."""
    address = urlsplit(app_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
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
def test_request_id_with_control_character_is_replaced(app_url: str, control: bytes) -> None:
    lines = raw_get(app_url, "/api/ping", b"X-Request-ID: evil" + control + b"forged\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    echoed = [line for line in lines if line.lower().startswith(b"x-request-id:")]
    assert len(echoed) == 1
    uuid.UUID(echoed[0].split(b":", 1)[1].strip().decode())


def test_request_id_longer_than_200_is_replaced(connection: Connection) -> None:
    echoed = connection.get_raw("/api/ping", headers={"X-Request-ID": "x" * 201}).headers["X-Request-ID"]
    uuid.UUID(echoed)


@pytest.mark.parametrize(
    ("status", "header", "value"),
    [
        ("401", "WWW-Authenticate", 'Basic realm="app"'),
        ("405", "Allow", "GET, HEAD"),
        ("503", "Retry-After", "10"),
    ],
)
def test_http_errors_keep_their_headers(connection: Connection, status: str, header: str, value: str) -> None:
    response = connection.get_raw("/api/error", params={"status": status}, expected_status=int(status))
    assert response.headers[header] == value
    assert response.json()["status"] == int(status)


def test_redirect_keeps_its_location(connection: Connection) -> None:
    response = connection.get_raw("/api/error?status=302", expected_status=302, allow_redirects=False)
    assert response.headers["Location"].endswith("/api/ping")


def test_head_gets_no_body(connection: Connection) -> None:
    assert connection.request("HEAD", "/api/error", expected_status=500).content == b""


def test_duplicate_is_400_on_postgresql_with_psycopg3(connection: Connection) -> None:
    value = f"dup-{uuid.uuid4()}"
    connection.post_json("/api/hello", json={"value": value}, expected_status=201)
    second = connection.post_json("/api/hello", json={"value": value}, expected_status=400)
    assert "duplicate key value violates unique constraint" in second["message"]


def test_psycopg2_url_keeps_working(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    with (
        ProcessComposition(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": url}, workers=1) as app,
        Connection(app.base_url) as connection,
    ):
        value = f"pg2-{uuid.uuid4()}"
        connection.post_json("/api/hello", json={"value": value}, expected_status=201)
        connection.post_json("/api/hello", json={"value": value}, expected_status=400)
        assert value in connection.get_json("/api/hello")["values"]


def test_bad_json_is_400(connection: Connection) -> None:
    body = connection.post("/api/hello", data=b"{not json", expected_status=400)
    assert "expected a JSON body" in body


def test_client_hanging_up_mid_body_is_logged_at_info(app_url: str, composition: BaseComposition) -> None:
    log_before = len(composition.logs())
    address = urlsplit(app_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"value": '
        )
    wait_until(
        lambda: "client disconnected" in composition.logs()[log_before:],
        what="the disconnection logged",
        timeout=10,
    )
    new_log = composition.logs()[log_before:]
    lines = [line for line in new_log.splitlines() if "client disconnected" in line]
    assert lines, new_log
    assert all(" INFO " in line for line in lines)
    assert "Traceback" not in new_log
    assert " ERROR " not in new_log


def test_development_mode_returns_the_stacktrace(postgres_url: str) -> None:
    env = {"SQLALCHEMY_URL": postgres_url, "DEVELOPMENT": "1"}
    with (
        ProcessComposition(EXAMPLE_APP_INI, env=env, workers=1) as app,
        Connection(app.base_url) as connection,
    ):
        body = connection.get_json("/api/error", expected_status=500)
    assert body["message"] == "failure on demand"
    assert body["exception"] == "RuntimeError"
    assert any("failure on demand" in line for line in body["stacktrace"])
