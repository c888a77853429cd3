"""Per-request cost of ``config.include(c2cwsgiutils.pyramid.includeme)`` on a Pyramid app.

Two WSGI apps are built in-process, identical except that the second includes the toolkit (the
request-ID tween, the JSON exception views, the ``/c2c`` index route). Each app's WSGI callable is
called directly (no server, no sockets) with a fresh copy of a minimal environ, in interleaved
rounds after a warm-up; the figure kept for each app is the median over rounds of the mean time
per call. Cases:

- ``ping``: ``GET /api/ping``, a small JSON ``Response``; the toolkit generates a UUID as the ID.
- ``ping + X-Request-ID``: the same with an incoming ``X-Request-ID``, used instead of a UUID.
- ``404``: an unknown route; bare Pyramid renders its HTML 404, the toolkit its JSON 404.

How to read it: "added" is the fixed overhead the toolkit puts on every request, in µs, on this
machine; compare it with the app's own time per request (often milliseconds) rather than reading
the ratio alone, which is large only because the bare app does next to nothing. The runs are
single-threaded and in-process, so the figures are a lower bound of the real cost and vary
between machines; compare runs made on the same machine.
"""

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

import c2cwsgiutils.pyramid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # type: ignore[import-not-found,unused-ignore]

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

# Explicit settings, so that no default hides what is measured (environment variables still win).
SETTINGS = {"c2c.base_path": "/c2c", "c2c.development": "false", "c2c.requests_request_id": "false"}
TEMPLATE: Environ = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/api/ping",
    "QUERY_STRING": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "localhost:8080",
    "HTTP_ACCEPT": "*/*",
    "HTTP_USER_AGENT": "bench/1.0",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(b""),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}
JSON = "application/json"
# (name, environ template, expected status, expected Content-Type prefix: baseline, toolkit)
CASES: list[tuple[str, Environ, str, tuple[str, str]]] = [
    ("ping", TEMPLATE, "200 OK", (JSON, JSON)),
    ("ping + X-Request-ID", {**TEMPLATE, "HTTP_X_REQUEST_ID": "3f1c2b7e-bench"}, "200 OK", (JSON, JSON)),
    ("404", {**TEMPLATE, "PATH_INFO": "/api/nowhere"}, "404 Not Found", ("text/html", JSON)),
]


def ping(request: Request) -> Response:
    del request
    return Response(body=b'{"status": "ok"}', content_type=JSON, charset="utf-8")


def make_app(toolkit: bool) -> WSGIApp:
    config = Configurator(settings=dict(SETTINGS))
    if toolkit:
        config.include(c2cwsgiutils.pyramid.includeme)
    config.add_route("ping", "/api/ping")
    config.add_view(ping, route_name="ping", request_method="GET")
    app: WSGIApp = config.make_wsgi_app()
    return app


def ignore_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    del status, headers, exc_info


def check(app: WSGIApp, template: Environ, status: str, content_type: str, toolkit: bool) -> None:
    """Fail loudly if an app does not answer the way the case assumes."""
    seen: dict[str, Any] = {}

    def start_response(got: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        del exc_info
        seen.update(status=got, headers=dict(headers))

    b"".join(app(template.copy(), start_response))
    headers = seen["headers"]
    request_id = headers.get("X-Request-ID")
    # The toolkit echoes the incoming ID, or a new non-empty one; the baseline sends none.
    expected_id = template.get("HTTP_X_REQUEST_ID", request_id or "a new one") if toolkit else None
    answer = (seen["status"], headers["Content-Type"].split(";")[0], request_id)
    if answer != (status, content_type, expected_id):
        raise SystemExit(f"unexpected answer: {seen} for {template['PATH_INFO']} (toolkit={toolkit})")


def time_calls(app: WSGIApp, template: Environ, calls: int) -> float:
    """Return the mean time of one call, in µs."""
    copy, start_response, perf_counter_ns = template.copy, ignore_start_response, time.perf_counter_ns
    start = perf_counter_ns()
    for _ in range(calls):
        result = app(copy(), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (perf_counter_ns() - start) / calls / 1000


def measure(apps: tuple[WSGIApp, WSGIApp], template: Environ, rounds: int, calls: int) -> tuple[float, float]:
    """Return the median µs per call of the baseline and toolkit apps, alternating in rounds."""
    for app in apps:
        time_calls(app, template, max(calls // 10, 100))
    baseline, toolkit = harness.alternate(
        lambda: time_calls(apps[0], template, calls), lambda: time_calls(apps[1], template, calls), rounds
    )
    return statistics.median(baseline), statistics.median(toolkit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per case (default 15)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per app per round (default 20000)")
    parser.add_argument("--check-us", type=float, default=None, help="exit 1 if ping adds more µs than this")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the setup must be warning-free
        apps = (make_app(toolkit=False), make_app(toolkit=True))
    print(f"{'case':<22}{'baseline µs':>13}{'toolkit µs':>12}{'added µs':>10}{'ratio':>7}")
    added_ping = 0.0
    for name, template, status, content_types in CASES:
        for app, content_type, toolkit in zip(apps, content_types, (False, True), strict=True):
            check(app, template, status, content_type, toolkit)
        baseline, with_toolkit = measure(apps, template, args.rounds, args.calls)
        added = with_toolkit - baseline
        if name == "ping":
            added_ping = added
        ratio = with_toolkit / baseline
        print(f"{name:<22}{baseline:>13.2f}{with_toolkit:>12.2f}{added:>10.2f}{ratio:>7.2f}")
    if args.check_us is not None and added_ping > args.check_us:
        print(f"FAIL: ping adds {added_ping:.2f} µs/request, over {args.check_us} µs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
