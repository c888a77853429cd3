"""Hostile and broken input against the example app under real gunicorn.

Requests are written byte for byte on a socket: HTTP client libraries refuse to send most of
them. The app runs with LOG_LEVEL=DEBUG so that tests can wait for what it logs.
"""

import collections
import os
import socket
import struct
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils.acceptance.sentry import SentryReceiver
from c2cwsgiutils.acceptance.server import AppServer
from testing.fixtures import EXAMPLE_APP_INI


@pytest.fixture(scope="module")
def sentry_receiver() -> Iterator[SentryReceiver]:
    """Where both apps send their Sentry events: the sweep counts them and the secrets in them."""
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, sentry_receiver: SentryReceiver) -> Iterator[AppServer]:
    database = Path(tmp_path_factory.mktemp("hostile")) / "app.sqlite"
    env = {
        "SQLALCHEMY_URL": f"sqlite:///{database}",
        "LOG_LEVEL": "DEBUG",
        "DEVELOPMENT": "0",
        "SENTRY_URL": sentry_receiver.dsn,
    }
    with AppServer(EXAMPLE_APP_INI, env=env, workers=2) as server:
        yield server


def exchange(
    app: AppServer, request: bytes, timeout: float = 10
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Send a raw request; return the status, the header lines and the body."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer, f"the server closed the connection without an answer to {request[:200]!r}"
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    headers = [(name, value) for name, _, value in (line.partition(b":") for line in header_lines)]
    status = int(status_line.split()[1])
    _tally(status, headers, body)
    return status, headers, body


# What the whole module sent and got back: printed at its end (`make load` runs it with -s), for
# docs/reliability.md.
SWEEP: collections.Counter[str] = collections.Counter()


def _tally(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    SWEEP["requests"] += 1
    SWEEP["5xx"] += status >= 500
    # The app's answers carry the request ID; gunicorn's own (a request it refuses) do not.
    from_app = any(name.strip().lower() == b"x-request-id" for name, _ in headers)
    # An error, that is: the ops page and its files, the metrics' text, are not JSON on purpose.
    SWEEP["errors from the app, not JSON"] += bool(
        from_app and status >= 400 and body and not content_type(headers).startswith(b"application/json")
    )
    SWEEP["secrets in the bodies"] += sum(body.count(secret.encode()) for secret in SECRETS.values())


@pytest.fixture(scope="module", autouse=True)
def sweep_report(app: AppServer, ops_app: AppServer, sentry_receiver: SentryReceiver) -> Iterator[None]:
    """Print the figures of the module's run: what was sent and answered, the logs, Sentry's events."""
    SWEEP.clear()
    yield
    time.sleep(1)  # the events of the last requests are still on their way (sent by a thread)
    logs = app.log() + ops_app.log()
    SWEEP["tracebacks in the logs"] = logs.count("Traceback")
    SWEEP["secrets in the logs"] = sum(logs.count(secret) for secret in SECRETS.values())
    SWEEP["Sentry events"] = len(sentry_receiver.events)
    events = sentry_receiver.raw()
    SWEEP["secrets in Sentry events"] = sum(events.count(secret.encode()) for secret in SECRETS.values())
    print(f"\nhostile input: {dict(SWEEP)}")
    # Each test asserts its own answers; these hold for the whole run, the deliberate 500 aside.
    deliberate = SWEEP["deliberate 500s (a traceback and an event each)"]
    assert SWEEP["5xx"] == SWEEP["errors from the app, not JSON"] == 0, dict(SWEEP)
    assert SWEEP["secrets in the bodies"] == SWEEP["secrets in the logs"] == 0, dict(SWEEP)
    assert SWEEP["secrets in Sentry events"] == 0, dict(SWEEP)
    assert SWEEP["tracebacks in the logs"] == SWEEP["Sentry events"] == deliberate, dict(SWEEP)


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


# Every ops view, with every secret configured: their parameters and headers, hostile. Examples
# per test: C2C_HOSTILE_EXAMPLES (100 in `make test`, 3000 in `make load`).
HOSTILE_EXAMPLES = int(os.environ.get("C2C_HOSTILE_EXAMPLES", "100"))
SECRETS = {
    "LOG_VIEW_SECRET": f"log-{uuid.uuid4().hex}",
    "SQL_PROFILER_SECRET": f"sql-{uuid.uuid4().hex}",
    "DEBUG_VIEW_SECRET": f"debug-{uuid.uuid4().hex}",
    "STATS_VIEW_SECRET": f"stats-{uuid.uuid4().hex}",
    "C2C_PROMETHEUS_SECRET": f"prom-{uuid.uuid4().hex}",
    "DB_MAINTENANCE_SECRET": f"maintenance-{uuid.uuid4().hex}",
}
# The parameters the ops views read, and some they do not.
PARAMS = [
    "secret",
    "name",
    "level",
    "duration",
    "enable",
    "reset",
    "max_level",
    "checks",
    "timings",
    "format",
    "limit",
    "time",
    "readonly",
    "x",
]
ODD_VALUES = [
    "",
    "root",
    "DEBUG",
    "debug ",
    "NOPE",
    "1",
    "0",
    "-1",
    "true",
    "yes",
    "1e309",
    "nan",
    "10m",
    "-5s",
    "99999999999999999999",
    "\r\nSet-Cookie: x=1",
    "\x00",
    "é",
    "\U0001f600",
    "\ud800",
]


@pytest.fixture(scope="module")
def ops_app(tmp_path_factory: pytest.TempPathFactory, sentry_receiver: SentryReceiver) -> Iterator[AppServer]:
    database = Path(tmp_path_factory.mktemp("hostile-ops")) / "app.sqlite"
    env = {
        "SQLALCHEMY_URL": f"sqlite:///{database}",
        "DEVELOPMENT": "0",
        "STATS_VIEW": "1",
        "C2C_PROMETHEUS": "1",
        "SENTRY_URL": sentry_receiver.dsn,
        **SECRETS,
    }
    with AppServer(EXAMPLE_APP_INI, env=env, workers=2) as server:
        yield server


def ops_views(app: AppServer) -> dict[str, str]:
    """Return the ops views the index lists, by name (the index itself included)."""
    views: dict[str, str] = requests.get(app.url("/c2c/"), timeout=10).json()["views"]
    return {"index": "/c2c/", **views}


def quote_text(text: str) -> bytes:
    """Percent-encode any text, lone surrogates included (as their UTF-8 with surrogatepass)."""
    return urllib.parse.quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="").encode()


param_value = st.one_of(
    st.sampled_from(ODD_VALUES).map(quote_text),
    st.text(max_size=30).map(quote_text),
    st.integers(min_value=300, max_value=3000).map(lambda size: b"x" * size),
    percent_bytes,
)
# A parameter: name=value, name= or a bare name; repeated names come from the list.
param = st.tuples(st.sampled_from(PARAMS).map(str.encode), st.sampled_from([b"=", b""]), param_value).map(
    lambda parts: parts[0] + (parts[1] + parts[2] if parts[1] else b"")
)
wrong_secret = st.one_of(
    st.sampled_from(["", "x", *(secret[:-1] for secret in SECRETS.values())]).map(str.encode),
    st.sampled_from(list(SECRETS.values())).map(lambda secret: secret.encode() + b"x"),
    header_text,
)
ACCEPTS = [b"*/*", b"text/html", b"application/xml", b"application/json;q=0", b"\xff\xfe", b"x" * 3000]


def hostile_ops_request(  # noqa: PLR0917 (the strategies' values)
    views: list[str],
    view: str,
    suffix: bytes,
    method: bytes,
    params: list[bytes],
    separator: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> tuple[bytes, bytes]:
    """Return the target and the raw request."""
    target = views[int.from_bytes(view.encode()) % len(views)].encode() + suffix
    if params:
        target += b"?" + separator.join(params)
    return target, raw_request(method, target, headers, body)


def assert_safe_answer(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, target: bytes, method: bytes
) -> None:
    """Never a crash, never a stack trace, never a control character in a response header."""
    if status >= 500:
        # The health check answers 500 when a check fails (which ones run depends on max_level):
        # a report, not a crash.
        assert status == 500, (target, body)
        assert target.startswith(b"/c2c/health_check"), (target, body)
        assert method == b"HEAD" or b'"failures"' in body, (target, body)
    assert b"Traceback" not in body, (target, body)
    assert b'File "' not in body, (target, body)
    for name, value in headers:
        assert all(32 <= byte < 127 or byte == 9 for byte in name + value), (target, name, value)


methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"TRACE"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=8).map(str.encode),
)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [b"Accept", b"Content-Type", b"X-Request-ID", b"traceparent", b"Cookie", b"X-Api-Key"]
        ),
        st.one_of(st.sampled_from(ACCEPTS), header_text),
    ),
    max_size=3,
    # A repeated Content-Type is gunicorn's to reject: see test_request_gunicorn_rejects_*.
    unique_by=lambda header: header[0],
)
suffixes = st.sampled_from([b"", b"/", b"//", b"/x", b"%2F", b".json", b"?"])


@settings(
    max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    view=st.text(min_size=1, max_size=3),
    suffix=suffixes,
    method=methods,
    params=st.lists(param, max_size=5),
    separator=st.sampled_from([b"&", b";"]),
    secret=st.one_of(st.none(), wrong_secret),
    sent_in=st.sampled_from(["header", "query"]),
    other_headers=extra_headers,
    body=st.one_of(st.just(b""), st.binary(max_size=100), st.just(b'{"level": "DEBUG"}')),
)
def _sweep_without_the_secret(  # noqa: PLR0917 (hypothesis arguments)
    app: AppServer,
    views: list[str],
    protected: set[str],
    view: str,
    suffix: bytes,
    method: bytes,
    params: list[bytes],
    separator: bytes,
    secret: bytes | None,
    sent_in: str,
    other_headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    headers = list(other_headers)
    params = [param for param in params if not param.startswith(b"secret")]
    if secret is not None and sent_in == "header":
        headers.append((b"X-API-Key", secret))
    elif secret is not None:
        params.append(b"secret=" + urllib.parse.quote_from_bytes(secret, safe="").encode())
    target, request = hostile_ops_request(views, view, suffix, method, params, separator, headers, body)
    status, response_headers, response_body = exchange(app, request)
    assert_safe_answer(status, response_headers, response_body, target, method)
    path = target.partition(b"?")[0].decode()
    if path in protected:
        # The ops views answer a CORS preflight (their secret may come in X-API-Key): no content.
        # 414 and 431: gunicorn refuses the request line or a header before the app sees it.
        preflight = method == b"OPTIONS" and status == 204 and not response_body
        assert preflight or status in {400, 403, 404, 405, 414, 431}, (target, status, response_body)


def state(app: AppServer) -> dict[str, object]:
    """Return what an ops request could change: log levels, the SQL profiler, the metrics."""
    log_level = requests.get(
        app.url("/c2c/logging/level"), headers={"X-API-Key": SECRETS["LOG_VIEW_SECRET"]}, timeout=10
    ).json()
    profiler = requests.get(
        app.url("/c2c/sql_profiler"), headers={"X-API-Key": SECRETS["SQL_PROFILER_SECRET"]}, timeout=10
    ).json()
    counters = requests.get(
        app.url("/c2c/stats.json"), headers={"X-API-Key": SECRETS["STATS_VIEW_SECRET"]}, timeout=10
    ).json()["counters"]
    on_demand = {key: value for key, value in counters.items() if key.startswith("errors_on_demand")}
    maintenance = requests.get(
        app.url("/c2c/db/maintenance"), headers={"X-API-Key": SECRETS["DB_MAINTENANCE_SECRET"]}, timeout=10
    ).json()
    return {
        "log_levels": log_level,
        "profiler": profiler,
        "errors_on_demand": on_demand,
        "db_maintenance": maintenance,
    }


def test_ops_views_without_their_secret_never_crash_leak_or_change_state(ops_app: AppServer) -> None:
    views = ops_views(ops_app)
    protected = {
        path for path in views.values() if requests.get(ops_app.url(path), timeout=10).status_code == 403
    }
    assert {
        "/c2c/logging/level",
        "/c2c/sql_profiler",
        "/c2c/stats.json",
        "/c2c/debug/stacks",
        "/c2c/db/maintenance",
    } <= protected
    for _ in range(4):  # a counter in every worker, for a reset to show
        requests.get(ops_app.url("/api/error?status=400"), headers={"Connection": "close"}, timeout=10)
    before = state(ops_app)
    assert before["errors_on_demand"]
    _sweep_without_the_secret(ops_app, sorted(views.values()), protected)
    assert state(ops_app) == before


@settings(
    max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    view=st.sampled_from(
        [
            "/c2c/logging/level",
            "/c2c/sql_profiler",
            "/c2c/stats.json",
            "/c2c/debug/memory",
            "/c2c/metrics",
            "/c2c/db/maintenance",
        ]
    ),
    method=st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT"]),
    params=st.lists(param, max_size=5),
    separator=st.sampled_from([b"&", b";"]),
    sent_in=st.sampled_from(["header", "query"]),
    other_headers=extra_headers,
)
def _sweep_with_the_secret(  # noqa: PLR0917 (hypothesis arguments)
    app: AppServer,
    view: str,
    method: bytes,
    params: list[bytes],
    separator: bytes,
    sent_in: str,
    other_headers: list[tuple[bytes, bytes]],
) -> None:
    secret = {
        "/c2c/logging/level": "LOG_VIEW_SECRET",
        "/c2c/sql_profiler": "SQL_PROFILER_SECRET",
        "/c2c/stats.json": "STATS_VIEW_SECRET",
        "/c2c/debug/memory": "DEBUG_VIEW_SECRET",
        "/c2c/metrics": "C2C_PROMETHEUS_SECRET",
        "/c2c/db/maintenance": "DB_MAINTENANCE_SECRET",
    }[view]
    headers = [(name, value) for name, value in other_headers if name.lower() != b"x-api-key"]
    params = [param for param in params if not param.startswith(b"secret")]
    if sent_in == "header":
        headers.append((b"X-API-Key", SECRETS[secret].encode()))
    else:
        params.append(b"secret=" + SECRETS[secret].encode())
    target, request = hostile_ops_request([view], "x", b"", method, params, separator, headers, b"")
    # debug/memory walks the objects of every worker: slow on a busy machine.
    status, response_headers, response_body = exchange(app, request, timeout=60)
    assert_safe_answer(status, response_headers, response_body, target, method)
    assert status != 403, (target, response_body)  # the secret was accepted, however it came
    # 414 and 431 are gunicorn's own answers (request line or header too large), before the app.
    if status >= 400 and method != b"HEAD" and status not in {414, 431}:
        assert content_type(response_headers).startswith(b"application/json"), (target, response_body)


def test_ops_views_with_their_secret_answer_hostile_parameters_with_clear_4xx(ops_app: AppServer) -> None:
    _sweep_with_the_secret(ops_app)
    # Leave no override behind for the other tests of the module.
    for path, secret in (
        ("/c2c/sql_profiler?enable=0", "SQL_PROFILER_SECRET"),
        ("/c2c/db/maintenance?readonly=false", "DB_MAINTENANCE_SECRET"),
    ):
        requests.get(ops_app.url(path), headers={"X-API-Key": SECRETS[secret]}, timeout=10)


def test_unknown_log_level_is_a_400_naming_the_levels(ops_app: AppServer) -> None:
    response = requests.get(
        ops_app.url("/c2c/logging/level?name=x&level=LOUD"),
        headers={"X-API-Key": SECRETS["LOG_VIEW_SECRET"]},
        timeout=10,
    )
    assert response.status_code == 400
    assert "DEBUG" in response.json()["message"]


@pytest.mark.parametrize(
    "request_id",
    [b"x" * 201, b"x" * 8000, b"\xc3\xa9t\xc3\xa9", b"a\tb", b"\x7f", b"a\x01b"],
    ids=["201 chars", "8000 chars", "utf-8", "tab", "DEL", "control"],
)
def test_request_id_too_long_or_not_printable_is_replaced_by_a_uuid(
    ops_app: AppServer, request_id: bytes
) -> None:
    status, headers, _ = exchange(ops_app, raw_request(b"GET", b"/api/ping", [(b"X-Request-ID", request_id)]))
    if status == 400:
        return  # gunicorn refuses control characters in any header value: a clear 4xx too
    assert status == 200
    echoed = next(value.strip() for name, value in headers if name.lower() == b"x-request-id")
    assert echoed != request_id
    assert uuid.UUID(echoed.decode())


@pytest.mark.parametrize(
    "traceparent",
    [
        b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01",
        b"nonsense",
        b"00-" + b"f" * 5000,
        b"\xff\xfe",
        b"00--01",
    ],
    ids=["all-zero trace id", "nonsense", "huge", "not ascii", "empty ids"],
)
def test_malformed_traceparent_is_ignored(ops_app: AppServer, traceparent: bytes) -> None:
    status, _, body = exchange(ops_app, raw_request(b"GET", b"/api/ping", [(b"traceparent", traceparent)]))
    assert (status, body) == (200, b'{"pong": true}')


def test_cr_lf_in_a_header_value_cannot_add_a_header(ops_app: AppServer) -> None:
    status, headers, _ = exchange(
        ops_app,
        b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\rSet-Cookie: x=1\r\nConnection: close\r\n\r\n",
    )
    assert status in {200, 400}
    assert not any(name.lower() == b"set-cookie" for name, _ in headers)


def test_request_gunicorn_rejects_gets_a_400_and_an_access_line(ops_app: AppServer) -> None:
    request_id = f"rejected-{uuid.uuid4()}"
    log_before = len(ops_app.log())
    status, _, _ = exchange(
        ops_app,
        raw_request(
            b"GET",
            b"/api/ping",
            [(b"X-Request-ID", request_id.encode()), (b"Content-Type", b"a"), (b"Content-Type", b"b")],
        ),
    )
    assert status == 400
    deadline = time.monotonic() + 5
    while '"GET /api/ping HTTP/1.1" 400' not in ops_app.log()[log_before:]:
        assert time.monotonic() < deadline, ops_app.log()[log_before:]
        time.sleep(0.05)
    assert "Traceback" not in ops_app.log()[log_before:]


@pytest.mark.parametrize(
    ("content_type_value", "body"),
    [
        (b"application/json", b"{not json"),
        (b"application/json", b"[1, 2]"),
        (b"application/json", b'"just a string"'),
        (b"application/json", b"\xff\xfe\x00"),
        (b"application/json; charset=nope", b'{"value": "x"}'),
        (b"text/plain", b"value=x"),
        (b"application/json", b'{"value": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ],
    ids=["not json", "array", "string", "not utf-8", "unknown charset", "text", "deep nesting"],
)
def test_body_that_is_not_the_expected_json_is_a_json_400_from_a_service(
    app: AppServer, content_type_value: bytes, body: bytes
) -> None:
    status, headers, response_body = exchange(
        app, raw_request(b"POST", b"/api/cors/credentials", [(b"Content-Type", content_type_value)], body)
    )
    assert status == 400, response_body
    assert content_type(headers).startswith(b"application/json")
    assert b"Traceback" not in response_body


# The example app's own parameters: what users copy must not answer a 500 to any value.
APP_VALUES = [*ODD_VALUES, "nan", "inf", "-inf", "-1", "²", "٣", "1e25", "10.0001", "0", "302", "418"]


@settings(
    max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(["/api/sleep?seconds=", "/api/error?status=", "/api/greetings?value="]),
    value=st.one_of(st.sampled_from(APP_VALUES), st.text(max_size=12)).map(quote_text),
)
def _sweep_app_parameters(app: AppServer, target: str, value: bytes) -> None:
    method = b"POST" if "greetings" in target else b"GET"
    status, headers, body = exchange(app, raw_request(method, target.encode() + value), timeout=30)
    assert status < 500 or (target.startswith("/api/error") and status in {500, 503}), (target, value, body)
    assert content_type(headers).startswith(b"application/json"), (target, value, body)


def test_the_example_app_s_parameters_never_give_an_unexpected_500(app: AppServer) -> None:
    """``/api/error`` answers the 500 and 503 it is asked for; no other value of any parameter does."""
    _sweep_app_parameters(app)


@pytest.mark.parametrize(
    "value", ['"\\ud800"', '"a\\udfffb"', '"\\ud83d"', "1", "null", '""', '"' + "x" * 201 + '"']
)
def test_a_json_value_the_database_cannot_store_is_a_400(app: AppServer, value: str) -> None:
    body = b'{"value": ' + value.encode() + b"}"
    status, headers, answer = exchange(
        app, raw_request(b"POST", b"/api/hello", [(b"Content-Type", b"application/json")], body)
    )
    assert status == 400, answer
    assert content_type(headers).startswith(b"application/json")


@pytest.mark.parametrize("charset", [b"iso-8859-1", b"latin-1", b"ascii", b"utf-16", b"cp1252"])
@pytest.mark.parametrize("path", [b"/c2c/page/login", b"/c2c/logging/level"])
def test_a_form_in_another_charset_is_a_json_400_without_a_traceback(
    ops_app: AppServer, charset: bytes, path: bytes
) -> None:
    headers = [(b"Content-Type", b"application/x-www-form-urlencoded; charset=" + charset)]
    if path == b"/c2c/logging/level":
        headers.append((b"X-API-Key", SECRETS["LOG_VIEW_SECRET"].encode()))
    log_before = len(ops_app.log())
    status, response_headers, body = exchange(
        ops_app, raw_request(b"POST", path, headers, b"secret=caf\xe9&name=root")
    )
    assert status == 400, body
    assert b"must be sent in UTF-8" in body
    assert content_type(response_headers).startswith(b"application/json")
    assert "Traceback" not in ops_app.log()[log_before:]


def test_the_host_header_cannot_make_the_health_check_call_another_server(app: AppServer) -> None:
    """The example app's URL check is ``request.route_url("ping")``: on the app's own address."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as tarpit:
        tarpit.settimeout(0)
        hostile = f"127.0.0.1:{tarpit.getsockname()[1]}".encode()
        answers: list[int] = []

        def probe(host: bytes) -> None:
            request = (
                b"GET /c2c/health_check?checks=ping HTTP/1.1\r\nHost: "
                + host
                + b"\r\nConnection: close\r\n\r\n"
            )
            answers.append(exchange(app, request)[0])

        for host in (hostile, b"test", hostile, b"test"):
            probe(host)
        assert answers == [200] * 4
        with pytest.raises(BlockingIOError):
            tarpit.accept()  # nobody called it


def test_a_huge_body_to_the_sign_in_is_refused_without_being_read(ops_app: AppServer) -> None:
    """A 400 MB Content-Length, nothing sent: a 413 at once (the worker would wait for the body)."""
    request = (
        b"POST /c2c/page/login HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400000000\r\n\r\nsecret="
    )
    started = time.monotonic()
    status, headers, body = exchange(ops_app, request)
    assert (status, time.monotonic() - started < 2) == (413, True)
    assert content_type(headers).startswith(b"application/json"), body


@pytest.mark.parametrize(
    "header", [b"Ocp-Apim-Subscription-Key", b"X-Functions-Key", b"X-Auth-Key", b"X-Goog-Iap-Jwt-Assertion"]
)
def test_vendor_credential_headers_are_masked_by_debug_headers(ops_app: AppServer, header: bytes) -> None:
    headers = [(b"X-API-Key", SECRETS["DEBUG_VIEW_SECRET"].encode()), (header, b"vendor-credential-value")]
    status, _, body = exchange(ops_app, raw_request(b"GET", b"/c2c/debug/headers", headers))
    assert status == 200
    assert b"vendor-credential-value" not in body


def test_the_sweep_hears_sentry_and_its_events_hold_no_secret(
    ops_app: AppServer, sentry_receiver: SentryReceiver
) -> None:
    """The sweep's Sentry figures are not vacuous: a deliberate 500 is an event, without the secrets.

    Sent with requests, not counted among the sweep's requests; the report counts it in its events.
    """
    before = len(sentry_receiver.events)
    secret = SECRETS["LOG_VIEW_SECRET"]
    response = requests.get(
        ops_app.url(f"/api/error?status=500&secret={secret}"),
        headers={"X-Api-Key": secret, "Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 500
    SWEEP["deliberate 500s (a traceback and an event each)"] += 1
    events = sentry_receiver.wait_for_events(before + 1)
    assert events[before]["exception"]["values"]
    assert secret.encode() not in sentry_receiver.raw()
