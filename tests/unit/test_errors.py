import logging
from typing import Any, NoReturn

import pytest
import sqlalchemy
from pyramid import httpexceptions
from pyramid.request import Request
from webob.request import DisconnectionError

from c2cwsgiutils import errors
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


@pytest.mark.parametrize(("path", "status"), [("/crash", 500), ("/no/such/page", 404), ("/%ff", 400)])
def test_error_answers_are_never_cached_as_in_the_original(app: Any, path: str, status: int) -> None:
    cache_control = app.get(path, status=status).headers["Cache-Control"]
    assert {"no-cache", "no-store", "max-age=0"} <= {part.strip() for part in cache_control.split(",")}


def test_unexpected_error_body_carries_the_request_id(app: Any) -> None:
    response = app.get("/crash", headers={"X-Request-ID": "abc-123"}, status=500)
    assert response.json["request_id"] == "abc-123"


def test_development_mode_adds_the_stacktrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVELOPMENT", "1")
    response = make_app({"crash": raise_runtime_error}).get("/crash", status=500)
    assert any("raise_runtime_error" in line for line in response.json["stacktrace"])


def test_development_message_is_the_exception_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's ``message`` was ``str(exception)``: ``boom``, not ``RuntimeError: boom``."""
    monkeypatch.setenv("DEVELOPMENT", "1")
    response = make_app({"crash": raise_runtime_error}).get("/crash", status=500)
    assert response.json["message"] == "boom: secret internals"
    assert response.json["exception"] == "RuntimeError"


def test_unexpected_error_is_logged_once_with_request_id(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        app.get("/crash", headers={"X-Request-ID": "log-me"}, status=500)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].request_id == "log-me"  # type: ignore[attr-defined]
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


def conflict_with_json_body(request: Request) -> NoReturn:
    raise httpexceptions.HTTPConflict(json_body={"reason": "taken", "id": 7})


def conflict_with_full_json_body(request: Request) -> NoReturn:
    raise httpexceptions.HTTPConflict(json_body={"status": 409, "message": "mine", "reason": "taken"})


def read_params(request: Request) -> dict[str, Any]:
    return dict(request.params)


def read_json(request: Request) -> Any:
    return request.json_body


def store_json_value(request: Request) -> Any:
    """What a view does with a JSON value: encode it for a database, a file or a socket."""
    return {"bytes": len(request.json_body["value"].encode("utf-8"))}


def read_text(request: Request) -> str:
    return str(request.text)


def app_value_error(request: Request) -> NoReturn:
    int("not a number in app code")
    raise AssertionError("unreachable")


def app_connection_error(request: Request) -> NoReturn:
    raise ConnectionResetError("the backend reset the connection")


@pytest.fixture
def reading_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("DEVELOPMENT", raising=False)
    return make_app(
        {
            "conflict": conflict_with_json_body,
            "conflict_full": conflict_with_full_json_body,
            "params": read_params,
            "json": read_json,
            "text": read_text,
            "store": store_json_value,
            "value_error": app_value_error,
            "connection_error": app_connection_error,
            "recursion_error": app_recursion_error,
        }
    )


def test_http_exception_keeps_the_apps_json_body(reading_app: Any) -> None:
    response = reading_app.get("/conflict", headers={"X-Request-ID": "r1"}, status=409)
    assert response.json == {
        "reason": "taken",
        "id": 7,
        "status": 409,
        "message": "There was a conflict when trying to complete your request.",
        "request_id": "r1",
    }


def test_http_exception_json_body_wins_over_defaults(reading_app: Any) -> None:
    body = reading_app.get("/conflict_full", status=409).json
    assert (body["status"], body["message"], body["reason"]) == (409, "mine", "taken")


@pytest.mark.parametrize("path", ["/%ff", "/params%ff", "/%c3%28"])
def test_path_that_is_not_utf8_is_json_400(reading_app: Any, path: str) -> None:
    response = reading_app.get(path, status=400)
    assert response.content_type == "application/json"
    assert response.json["message"] == "the URL path is not valid UTF-8"


def test_query_string_that_is_not_utf8_is_json_400(reading_app: Any) -> None:
    response = reading_app.get("/params?q=%ff", status=400)
    assert "not valid utf-8" in response.json["message"]


def test_invalid_json_body_is_400(reading_app: Any) -> None:
    response = reading_app.post("/json", b"{not json", content_type="application/json", status=400)
    assert response.json["message"].startswith("the request body is not valid JSON")


def test_json_body_nested_too_deeply_is_400(reading_app: Any) -> None:
    body = b"[" * 3000 + b"]" * 3000
    response = reading_app.post("/json", body, content_type="application/json", status=400)
    assert response.json["message"] == "the request body is nested too deeply"


def app_recursion_error(request: Request) -> NoReturn:
    def recurse(depth: int) -> int:
        return recurse(depth + 1)

    recurse(0)
    raise AssertionError("unreachable")


def test_recursion_error_in_app_code_stays_a_500(reading_app: Any) -> None:
    reading_app.get("/recursion_error", status=500)


def test_unknown_charset_is_400(reading_app: Any) -> None:
    response = reading_app.post("/text", b"abc", content_type="text/plain; charset=nope", status=400)
    assert "unknown charset" in response.json["message"]


def test_body_not_in_its_charset_is_400(reading_app: Any) -> None:
    reading_app.post("/text", b"\xff\xfe", content_type="text/plain; charset=utf-8", status=400)


@pytest.mark.parametrize("charset", ["iso-8859-1", "latin-1", "ascii", "utf-16", "cp1252"])
def test_form_in_another_charset_than_utf8_is_400(reading_app: Any, charset: str) -> None:
    """WebOb refuses such a form with a DeprecationWarning raised (not warned) from its parser."""
    content_type = f"application/x-www-form-urlencoded; charset={charset}"
    response = reading_app.post("/params", b"name=caf\xe9", content_type=content_type, status=400)
    assert response.json["message"] == "the request's form must be sent in UTF-8"


def app_deprecation_warning(request: Request) -> NoReturn:
    raise DeprecationWarning("the app's own")


def test_deprecation_warning_raised_by_app_code_stays_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVELOPMENT", raising=False)
    make_app({"deprecated": app_deprecation_warning}).get("/deprecated", status=500)


def test_a_lone_surrogate_from_a_json_body_is_400_where_it_is_encoded(reading_app: Any) -> None:
    response = reading_app.post(
        "/store", b'{"value": "\\ud800"}', content_type="application/json", status=400
    )
    assert "lone surrogate" in response.json["message"]


def test_value_error_in_app_code_stays_a_500(reading_app: Any) -> None:
    assert reading_app.get("/value_error", status=500).json["message"] == "Internal server error"


def test_connection_error_in_app_code_stays_a_500(reading_app: Any) -> None:
    reading_app.get("/connection_error", status=500)


def test_error_log_line_escapes_control_characters(
    reading_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        reading_app.get("/value_error%0aforged", status=404)
        reading_app.get("/value_error", status=500)
    assert all("\n" not in record.getMessage() for record in caplog.records)


def test_describe_escapes_newlines() -> None:
    request = Request.blank("/")
    request.environ["PATH_INFO"] = "/a\nb"
    assert errors.describe(request) == "GET /a\\x0ab"
