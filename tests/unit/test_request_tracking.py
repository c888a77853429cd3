import http.server
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import webtest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import request_tracking
from tests.apps import make_app


def echo_id(request: Request) -> dict[str, str]:
    return {"id": request.c2c_request_id}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("C2C_REQUEST_ID_HEADER", raising=False)
    return make_app({"id": echo_id})


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def test_new_uuid_when_no_header(app: Any) -> None:
    assert is_uuid(app.get("/id").json["id"])


@pytest.mark.parametrize("header", ["X-Request-ID", "X-Correlation-ID", "Request-ID", "X-Varnish"])
def test_id_taken_from_known_headers(app: Any, header: str) -> None:
    assert app.get("/id", headers={header: "from-header"}).json["id"] == "from-header"


def test_x_request_id_comes_before_x_varnish(app: Any) -> None:
    response = app.get("/id", headers={"X-Varnish": "varnish", "X-Request-ID": "first"})
    assert response.json["id"] == "first"


def test_configured_header_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_REQUEST_ID_HEADER", "X-Amzn-Trace-Id")
    app = make_app({"id": echo_id})
    response = app.get("/id", headers={"X-Request-ID": "second", "X-Amzn-Trace-Id": "first"})
    assert response.json["id"] == "first"


def test_id_is_echoed_in_the_response(app: Any) -> None:
    response = app.get("/id", headers={"X-Correlation-ID": "corr"})
    assert response.headers["X-Request-ID"] == "corr"


def test_generated_id_is_echoed_in_the_response(app: Any) -> None:
    response = app.get("/id")
    assert response.headers["X-Request-ID"] == response.json["id"]


def test_id_is_echoed_on_error_responses(app: Any) -> None:
    response = app.get("/nowhere", headers={"X-Request-ID": "lost"}, status=404)
    assert response.headers["X-Request-ID"] == "lost"


def test_id_longer_than_200_characters_is_replaced(app: Any) -> None:
    assert is_uuid(app.get("/id", headers={"X-Request-ID": "a" * 201}).json["id"])


def test_id_of_200_characters_is_kept(app: Any) -> None:
    assert app.get("/id", headers={"X-Request-ID": "a" * 200}).json["id"] == "a" * 200


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b"])
def test_id_with_control_characters_is_replaced(value: str) -> None:
    environ = {"HTTP_X_REQUEST_ID": value}
    request_id = request_tracking.request_id_from_environ(environ, ("HTTP_X_REQUEST_ID",))
    assert is_uuid(request_id)


def test_bad_header_falls_back_to_the_next_one() -> None:
    environ = {"HTTP_X_REQUEST_ID": "a\nb", "HTTP_X_CORRELATION_ID": "good"}
    keys = ("HTTP_X_REQUEST_ID", "HTTP_X_CORRELATION_ID")
    assert request_tracking.request_id_from_environ(environ, keys) == "good"


def test_current_request_id_is_unset_outside_requests(app: Any) -> None:
    app.get("/id", headers={"X-Request-ID": "inside"})
    assert request_tracking.current_request_id.get() is None


class _HeaderRecorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 (reset by the fixture)
    traceparents: list[str | None] = []  # noqa: RUF012 (reset by the fixture)

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("X-Request-ID"))
        self.traceparents.append(self.headers.get("traceparent"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[str]:
    """A real HTTP server on loopback that records the X-Request-ID of what it receives."""
    _HeaderRecorder.seen = []
    _HeaderRecorder.traceparents = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_requests_calls_carry_the_id_onward(backend: str) -> None:
    def call_backend(request: Request) -> dict[str, int]:
        return {"status": requests.get(backend, timeout=5).status_code}

    make_app({"call": call_backend}).get("/call", headers={"X-Request-ID": "onward"})
    assert _HeaderRecorder.seen == ["onward"]


def test_caller_set_header_wins(backend: str) -> None:
    def call_backend(request: Request) -> dict[str, int]:
        return {"status": requests.get(backend, headers={"X-Request-ID": "mine"}, timeout=5).status_code}

    make_app({"call": call_backend}).get("/call", headers={"X-Request-ID": "onward"})
    assert _HeaderRecorder.seen == ["mine"]


def test_requests_outside_a_request_carry_no_id(backend: str) -> None:
    make_app()
    requests.get(backend, timeout=5)
    assert _HeaderRecorder.seen == [None]


@pytest.fixture
def unpatched_requests() -> Iterator[None]:
    """Take the process-wide ``requests`` hook off for the test, and put it back as it was."""
    send = requests.Session.send
    request_tracking.stop_propagating_to_requests()
    yield
    requests.Session.send = send  # type: ignore[method-assign]


@pytest.mark.usefixtures("unpatched_requests")
def test_propagation_can_be_switched_off(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_REQUESTS_REQUEST_ID", "false")

    def call_backend(request: Request) -> dict[str, int]:
        return {"status": requests.get(backend, timeout=5).status_code}

    make_app({"call": call_backend}).get("/call", headers={"X-Request-ID": "onward"})
    assert _HeaderRecorder.seen == [None]


def test_new_request_id_is_a_random_version_4_uuid() -> None:
    ids = [request_tracking.new_request_id() for _ in range(1000)]
    parsed = [uuid.UUID(value) for value in ids]
    assert all(value.version == 4 and value.variant == uuid.RFC_4122 for value in parsed)
    assert [str(value) for value in parsed] == ids
    assert len(set(ids)) == 1000


def test_forked_workers_draw_different_request_ids_whatever_the_app_seeds() -> None:
    """Without a reseed after fork, the child's next ID would be the parent's next one."""
    request_tracking.new_request_id()  # the generator exists before the fork, as in gunicorn
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: an app seeding random's shared generator changes nothing
        random.seed(42)
        os.write(write, request_tracking.new_request_id().encode())
        os._exit(0)
    os.close(write)
    assert os.waitpid(pid, 0)[1] == 0
    child_id = os.read(read, 100).decode()
    os.close(read)
    random.seed(42)
    assert request_tracking.new_request_id() != child_id


_SEEN_BY_APP_TWEEN: list[str] = []


def app_tween_factory(handler: Callable[[Request], Any], registry: Any) -> Callable[[Request], Any]:
    def tween(request: Request) -> Any:
        _SEEN_BY_APP_TWEEN.append(request.c2c_request_id)
        return handler(request)

    return tween


def test_id_is_set_for_app_tweens_placed_under_ours() -> None:
    _SEEN_BY_APP_TWEEN.clear()
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    config.add_tween(f"{__name__}.app_tween_factory", under=request_tracking.TWEEN)
    webtest.TestApp(config.make_wsgi_app()).get("/c2c/", headers={"X-Request-ID": "early"})
    assert _SEEN_BY_APP_TWEEN == ["early"]


def sets_its_own_id(request: Request) -> Response:
    response = Response(json_body={"ok": True})
    response.headers["X-Request-ID"] = "the-apps-own"
    return response


def test_app_setting_the_header_itself_gets_no_second_one() -> None:
    response = make_app({"own": sets_its_own_id}).get("/own", headers={"X-Request-ID": "incoming"})
    assert response.headers.getall("X-Request-ID") == ["the-apps-own"]


def test_id_is_published_to_callbacks_and_the_body_then_forgotten() -> None:
    seen: dict[str, str | None] = {}

    def streaming(request: Request) -> Response:
        request.add_response_callback(
            lambda _request, _response: seen.update(
                response_callback=request_tracking.current_request_id.get()
            )
        )
        request.add_finished_callback(
            lambda _request: seen.update(finished_callback=request_tracking.current_request_id.get())
        )

        def body() -> Iterator[bytes]:
            seen["body"] = request_tracking.current_request_id.get()
            yield b"streamed"

        return Response(app_iter=body(), content_type="text/plain")

    response = make_app({"stream": streaming}).get("/stream", headers={"X-Request-ID": "kept"})
    assert response.body == b"streamed"
    assert seen == {"response_callback": "kept", "finished_callback": "kept", "body": "kept"}
    assert request_tracking.current_request_id.get() is None


def test_id_is_forgotten_after_an_error_response(app: Any) -> None:
    app.get("/nowhere", headers={"X-Request-ID": "gone"}, status=404)
    assert request_tracking.current_request_id.get() is None


def test_content_length_survives(app: Any) -> None:
    response = app.get("/id", headers={"X-Request-ID": "len"})
    assert response.headers["Content-Length"] == str(len(response.body))


def test_subrequest_keeps_the_parents_id() -> None:
    def parent(request: Request) -> dict[str, Any]:
        sub = Request.blank("/id")
        child = request.invoke_subrequest(sub, use_tweens=True)
        return {
            "parent": request.c2c_request_id,
            "child": child.json["id"],
            "after": request_tracking.current_request_id.get(),
        }

    body = make_app({"id": echo_id, "parent": parent}).get("/parent", headers={"X-Request-ID": "p-1"}).json
    assert body == {"parent": "p-1", "child": "p-1", "after": "p-1"}


@pytest.mark.parametrize("value", ["caf\u00e9", "\u2603", "tab\there"])
def test_id_that_is_not_printable_ascii_is_replaced(value: str) -> None:
    request_id = request_tracking.request_id_from_environ(
        {"HTTP_X_REQUEST_ID": value}, ("HTTP_X_REQUEST_ID",)
    )
    assert is_uuid(request_id)


def test_printable_ascii_id_with_spaces_is_kept() -> None:
    value = "trace 42; span=7 ~!"
    assert (
        request_tracking.request_id_from_environ({"HTTP_X_REQUEST_ID": value}, ("HTTP_X_REQUEST_ID",))
        == value
    )


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("incoming", "forwarded"), [(TRACEPARENT, TRACEPARENT), ("garbage", None), (None, None)]
)
def test_traceparent_is_forwarded_when_valid(
    backend: str, incoming: str | None, forwarded: str | None
) -> None:
    def call_backend(request: Request) -> dict[str, int]:
        return {"status": requests.get(backend, timeout=5).status_code}

    headers = {"X-Request-ID": "traced", **({"traceparent": incoming} if incoming else {})}
    make_app({"call": call_backend}).get("/call", headers=headers)
    assert _HeaderRecorder.traceparents == [forwarded]
