import logging
from typing import Any, NoReturn

import pytest
import sqlalchemy
from pyramid import httpexceptions
from pyramid.request import Request
from webob.request import DisconnectionError

from tests.apps import make_app


def raise_runtime_error(request: Request) -> NoReturn:
    raise RuntimeError("boom: secret internals")


def raise_integrity_error(request: Request) -> NoReturn:
    """Hit a real unique constraint in an in-memory SQLite database."""
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (v TEXT UNIQUE)")
        connection.exec_driver_sql("INSERT INTO t VALUES ('x')")
        connection.exec_driver_sql("INSERT INTO t VALUES ('x')")
    raise AssertionError("unreachable")


def raise_http(exception: httpexceptions.HTTPException) -> Any:
    def view(request: Request) -> NoReturn:
        raise exception

    return view


def disconnect(request: Request) -> NoReturn:
    raise DisconnectionError("The client disconnected while sending the body")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("DEVELOPMENT", raising=False)
    return make_app(
        {
            "crash": raise_runtime_error,
            "integrity": raise_integrity_error,
            "redirect": raise_http(httpexceptions.HTTPFound(location="http://example.com/there")),
            "unauthorized": raise_http(
                httpexceptions.HTTPUnauthorized(headers={"WWW-Authenticate": "Basic"})
            ),
            "not_allowed": raise_http(httpexceptions.HTTPMethodNotAllowed(headers={"Allow": "GET"})),
            "forbidden": raise_http(httpexceptions.HTTPForbidden("no way")),
            "disconnect": disconnect,
            "not_modified": raise_http(httpexceptions.HTTPNotModified(headers={"ETag": '"v1"'})),
        }
    )


def test_unknown_route_is_json_404(app: Any) -> None:
    response = app.get("/nowhere", status=404)
    assert response.content_type == "application/json"
    assert response.json["status"] == 404


def test_http_exception_keeps_its_status_and_message(app: Any) -> None:
    response = app.get("/forbidden", status=403)
    assert response.json["status"] == 403
    assert response.json["message"] == "no way"


@pytest.mark.parametrize(
    ("path", "status", "header", "value"),
    [
        ("/redirect", 302, "Location", "http://example.com/there"),
        ("/unauthorized", 401, "WWW-Authenticate", "Basic"),
        ("/not_allowed", 405, "Allow", "GET"),
    ],
)
def test_http_exception_keeps_its_headers(app: Any, path: str, status: int, header: str, value: str) -> None:
    response = app.get(path, status=status)
    assert response.headers[header] == value
    assert response.json["status"] == status


def test_integrity_error_is_400_naming_the_constraint(app: Any) -> None:
    response = app.get("/integrity", status=400)
    assert response.json["status"] == 400
    assert "UNIQUE constraint failed" in response.json["message"]
    assert "INSERT" not in response.json["message"]


def test_unexpected_error_is_500_without_internals(app: Any) -> None:
    response = app.get("/crash", status=500)
    assert response.json["status"] == 500
    assert "secret internals" not in response.text
    assert "stacktrace" not in response.json


def test_unexpected_error_body_carries_the_request_id(app: Any) -> None:
    response = app.get("/crash", headers={"X-Request-ID": "abc-123"}, status=500)
    assert response.json["request_id"] == "abc-123"


def test_development_mode_adds_the_stacktrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVELOPMENT", "1")
    response = make_app({"crash": raise_runtime_error}).get("/crash", status=500)
    assert "RuntimeError: boom: secret internals" in response.json["message"]
    assert any("raise_runtime_error" in line for line in response.json["stacktrace"])


def test_unexpected_error_is_logged_once_with_request_id(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        app.get("/crash", headers={"X-Request-ID": "log-me"}, status=500)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "log-me" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_client_disconnect_is_logged_at_info(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        app.get("/disconnect", status=499)
    assert [record.levelno for record in caplog.records if "disconnected" in record.getMessage()] == [
        logging.INFO
    ]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_head_request_gets_no_body(app: Any) -> None:
    response = app.head("/crash", status=500)
    assert response.body == b""


def test_head_on_unknown_route_gets_no_body(app: Any) -> None:
    assert app.head("/nowhere", status=404).body == b""


def test_not_modified_keeps_an_empty_body(app: Any) -> None:
    response = app.get("/not_modified", status=304)
    assert response.body == b""
    assert response.headers["ETag"] == '"v1"'
