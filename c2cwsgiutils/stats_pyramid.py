"""Switch the metrics on in a Pyramid app: backends, automatic metrics, ``stats.json``, ``/metrics``.

``config.include("c2cwsgiutils.stats_pyramid")`` (done by ``c2cwsgiutils.pyramid``) makes the
backends the settings ask for (:class:`~c2cwsgiutils.stats.StatsSettings`,
:class:`~c2cwsgiutils.prometheus.PrometheusSettings`). With at least one, it also adds:

- a tween, under the request-tracking tween and over ``EXCVIEW`` (so that it sees the status of
  error responses), that times each request: ``route.{verb}.{route_name}.{status}``, and
  ``render.{verb}.{route_name}.{status}`` from the view's return (a view deriver) to the
  response; unmatched requests are all ``_not_found``;
- the ``Server-Timing`` header: ``total;dur=12.3, render;dur=1.2, sql;dur=3.4;desc="2 queries"``;
- ``sql.{normalised query}`` timers, from SQLAlchemy's cursor events on every engine
  (:func:`init_db_spy`);
- ``outgoing.{host}.{method}.{status}`` timers of the ``requests`` calls (:func:`measure_outgoing`),
  and ``outgoing;dur=...;desc="N calls"`` in ``Server-Timing`` for those made by the request.

With no backend, nothing is added: the app runs as if metrics did not exist.
"""

import contextvars
import dataclasses
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import EXCVIEW, INGRESS
from pyramid.viewderivers import VIEW

from c2cwsgiutils import broadcast, ops_views, prometheus, request_tracking, stats
from c2cwsgiutils.broadcast.core import Broadcaster
from c2cwsgiutils.config_utils import parse_bool
from c2cwsgiutils.include import first_time
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from c2cwsgiutils.responses import json_response

TWEEN = "c2cwsgiutils.stats_pyramid.tween_factory"
"""The metrics tween's name."""
CHANNEL = "c2c_stats"
UNMATCHED = "_not_found"
MAX_QUERIES = 200
"""Distinct normalised SQL queries per process; the others are counted as ``sql.other``."""
MAX_HOSTS = 100
"""Distinct hosts of outgoing calls per process; the others are counted as ``other``."""
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_RENDER_START = "_c2c_render_start"
_SERVER_TIMING_KEY = "c2cwsgiutils.server_timing"

STATS_BROADCASTER = Broadcaster()
"""Gathers stats.json from the workers of this gunicorn only (never through Redis): its own local channel."""


@dataclasses.dataclass(slots=True)
class RequestTimings:
    """What the request being served spent in SQL and in outgoing calls, for its ``Server-Timing``."""

    sql_seconds: float = 0.0
    sql_queries: int = 0
    outgoing_seconds: float = 0.0
    outgoing_calls: int = 0


_request_timings: contextvars.ContextVar[RequestTimings | None] = contextvars.ContextVar(
    "c2cwsgiutils_request_timings", default=None
)
_known_hosts: set[str] = set()
_configured: Any = None


# Backends.


def configure_backends(
    settings: stats.StatsSettings, prometheus_settings: prometheus.PrometheusSettings
) -> None:
    """Make the backends of the settings (once per process and settings; other ones replace them)."""
    global _configured  # noqa: PLW0603 (the backends are process-wide, see c2cwsgiutils.stats)
    key = (settings, prometheus_settings, tuple(sorted(stats.statsd_tags().items())))
    if key == _configured:
        return
    stats.reset()
    if settings.view:
        stats.add_backend(stats.MemoryBackend())
    if settings.statsd_address:
        stats.add_backend(
            stats.StatsdBackend(
                settings.statsd_address,
                settings.statsd_prefix,
                stats.statsd_tags(),
                max_packet=settings.statsd_max_packet,
            )
        )
    if prometheus_settings.on:
        stats.add_backend(prometheus.PrometheusBackend(prometheus_settings.prefix))
    _configured = key


def reset() -> None:
    """Forget the backends, the stats.json channel and the known SQL shapes and hosts (for tests)."""
    global _configured  # noqa: PLW0603
    stats.reset()
    STATS_BROADCASTER.reset()
    _configured = None
    _known_hosts.clear()
    _known_shapes.clear()
    _shapes.clear()
    request_tracking.REQUESTS_HOOKS.measure = None


# stats.json


def _dump(reset: bool = False) -> dict[str, Any]:
    """Return this process's in-memory metrics: each worker's answer to the stats.json broadcast."""
    memory = stats.backend(stats.MemoryBackend)
    return memory.dump(reset) if memory is not None else {}


def stats_view(request: Request) -> Response:
    """Answer the metrics of every worker of this gunicorn, summed; ``?reset=1`` clears them after."""
    reset_asked = request.params.get("reset", "")
    try:
        reset_them = parse_bool(reset_asked) if reset_asked else False
    except ValueError:
        reset_them = False
    answers = (
        STATS_BROADCASTER.broadcast(CHANNEL, {"reset": reset_them}, expect_answers=True, timeout=5) or []
    )
    response = json_response(stats.merge(answers))
    response.headers["X-Stats-Processes"] = str(len(answers))
    return response


def _start_stats_channel(config: Configurator) -> None:
    settings = broadcast.BroadcastSettings.of(config)
    from c2cwsgiutils.broadcast import local  # noqa: PLC0415

    base = Path(settings.directory) if settings.directory else local.default_directory()
    own = dataclasses.replace(settings, redis_url=None, directory=str(base / "stats"))
    broadcast.start(own, STATS_BROADCASTER)
    STATS_BROADCASTER.subscribe(CHANNEL, _dump)


# The automatic metrics.


def _render_timer(view: Callable[[Any, Request], Any], info: Any) -> Callable[[Any, Request], Any]:
    """Wrap a view (a view deriver, under its renderer): rendering starts when the view returns.

    (A ``BeforeRender`` subscriber would do too, but any subscriber makes Pyramid send its
    NewRequest/ContextFound/NewResponse events on every request.)
    """
    del info
    perf_counter = time.perf_counter

    def render_timer(context: Any, request: Request) -> Any:
        result = view(context, request)
        if not isinstance(result, Response):
            request.__dict__[_RENDER_START] = perf_counter()
        return result

    return render_timer


_render_timer.options = ()  # type: ignore[attr-defined]


def tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Time every request (and its rendering) into every backend; add the ``Server-Timing`` header."""
    backends = stats.BACKENDS
    server_timing = registry.get(_SERVER_TIMING_KEY, True)
    perf_counter = time.perf_counter
    request_timings = _request_timings

    def stats_tween(request: Request) -> Response:
        start = perf_counter()
        token = request_timings.set(RequestTimings()) if server_timing else None
        try:
            response = handler(request)
        except BaseException:
            _record(backends, request, 500, perf_counter() - start, None)
            raise
        finally:
            if token is not None:
                timings = request_timings.get()
                request_timings.reset(token)
        end = perf_counter()
        render_start = request.__dict__.get(_RENDER_START)
        render = end - render_start if render_start is not None else None
        _record(backends, request, response.status_code, end - start, render)
        if server_timing:
            timing = f"total;dur={(end - start) * 1000:.1f}"
            if render is not None:
                timing += f", render;dur={render * 1000:.1f}"
            if timings is not None and timings.sql_queries:
                timing += f', sql;dur={timings.sql_seconds * 1000:.1f};desc="{timings.sql_queries} queries"'
            if timings is not None and timings.outgoing_calls:
                seconds, calls = timings.outgoing_seconds, timings.outgoing_calls
                timing += f', outgoing;dur={seconds * 1000:.1f};desc="{calls} calls"'
            response.headerlist.append(("Server-Timing", timing))
        return response

    return stats_tween


def _record(
    backends: list[stats.Backend], request: Request, status: int, seconds: float, render: float | None
) -> None:
    route = request.matched_route
    name = route.name if route is not None else UNMATCHED
    method = request.method
    if method not in _METHODS:  # any word is a method: each would be a series of its own
        method = "other"
    for backend in backends:
        backend.request(method, name, status, seconds, render)


# SQL.

_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_SQL_NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_SQL_PARAM = re.compile(r"%\(\w+\)\w|%s|\$\d+|(?<![:\w]):\w+|\?")
_SQL_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)
_SQL_ROWS = re.compile(r"(\(\s*\?(?:\s*,\s*\?)*\s*\))(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))+")
_SQL_SPACES = re.compile(r"\s+")
# A cast of a parameter, as SQLAlchemy's psycopg (3) dialect writes them and psycopg2's did not
# (``%(id)s::INTEGER``, ``::TIMESTAMP WITH TIME ZONE``, ``::VARCHAR(50)[]``): dropped, so that a
# query has the key it had with the original on psycopg2.
_SQL_PARAM_CAST = re.compile(
    r'\?::(?:"[^"]*"|\w+)(?:\.(?:"[^"]*"|\w+))?(?:\([?\d, ]*\))?'
    r"(?: PRECISION| VARYING(?:\([?\d]*\))?| WITH(?:OUT)? TIME ZONE)?(?:\[\])*",
    re.IGNORECASE,
)
_shapes: dict[str, str] = {}
_known_shapes: set[str] = set()
_MAX_CACHED_STATEMENT = 4000


def _replace_between(text: str, start: str, end: str, replacement: str) -> str:
    """Replace each ``{start}...{end}`` (the shortest, left to right) by ``replacement``.

    What ``re.sub(f"{start}.*?{end}", replacement, text)`` does, in linear time: when no ``end``
    follows one ``start``, none follows a later one, so the search stops (the regex would scan to
    the end of the text again from each later ``start``: quadratic on a long statement).
    """
    parts: list[str] = []
    position = 0
    while (found := text.find(start, position)) >= 0:
        closing = text.find(end, found + len(start))
        if closing < 0:
            break
        parts += (text[position:found], replacement)
        position = closing + len(end)
    parts.append(text[position:])
    return "".join(parts)


def normalize_sql(statement: str, max_length: int = 1000) -> str:
    """Return the shape of a query: the original c2cwsgiutils' key, with every value as ``?``.

    As the original: a ``SELECT`` loses its column list (``SELECT FROM hello LIMIT ?``), an
    ``INSERT`` is named by its table (``INSERT INTO hello``), an ``UPDATE`` loses its ``SET``
    list (``UPDATE hello SET WHERE hello.id = ?``), ``IN (...)`` is ``IN (?)`` and parameters
    are ``?``, without the casts psycopg 3 adds to them. Beyond it, for safety (no value in a
    metric name) and fewer shapes: string and number literals and every parameter style are
    ``?``, whitespace is one space, and multi-row ``VALUES`` are one row. Each step is linear in
    the statement's length.
    """
    shape = _SQL_STRING.sub("?", statement)
    shape = _SQL_PARAM.sub("?", shape)
    shape = _SQL_NUMBER.sub("?", shape)
    shape = _SQL_SPACES.sub(" ", shape).strip()
    shape = _SQL_PARAM_CAST.sub("?", shape)
    shape = _replace_between(shape, "SELECT ", " FROM", "SELECT FROM")
    insert = shape.find("INSERT INTO ")
    if insert >= 0:
        columns = shape.find(" (", insert + len("INSERT INTO "))
        if columns >= 0:
            shape = shape[:columns]
    shape = _replace_between(shape, "SET ", " WHERE", "SET WHERE")
    shape = _SQL_IN_LIST.sub("IN (?)", shape)
    shape = _SQL_ROWS.sub(r"\1", shape)
    return shape[:max_length]


def sql_key(statement: str) -> str:
    """Return the metric key of a statement: its shape, or ``other`` past :data:`MAX_QUERIES` shapes."""
    shape = _shapes.get(statement)
    if shape is None:
        shape = normalize_sql(statement)
        if shape not in _known_shapes:
            if len(_known_shapes) >= MAX_QUERIES:
                shape = "other"
            else:
                _known_shapes.add(shape)
        # Statements are remembered by their text: not the long ones (a 5,000-element IN list
        # of each length would hold megabytes), which are keyed again, in linear time.
        if len(_shapes) < 10 * MAX_QUERIES and len(statement) <= _MAX_CACHED_STATEMENT:
            _shapes[statement] = shape
    return shape


def _before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    args[-2]._c2c_stats_start = time.perf_counter()  # the execution context


def _after_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    start = getattr(args[-2], "_c2c_stats_start", None)
    if start is None or not stats.BACKENDS:
        return
    seconds = time.perf_counter() - start
    key = sql_key(statement)
    for backend in stats.BACKENDS:
        backend.sql(key, seconds)
    timings = _request_timings.get()
    if timings is not None:
        timings.sql_seconds += seconds
        timings.sql_queries += 1


# Outgoing calls.


def outgoing_host(url: str) -> str:
    """Return the ``host`` label of a URL: its host (and explicit port), ``other`` past :data:`MAX_HOSTS`."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "unknown") + (f":{parts.port}" if parts.port else "")
    if host not in _known_hosts:
        if len(_known_hosts) >= MAX_HOSTS:
            return "other"
        _known_hosts.add(host)
    return host


def measure_outgoing(request: Any, status: int | str, seconds: float) -> None:
    """Record an outgoing ``requests`` call in every backend and in the request's ``Server-Timing``."""
    try:
        host = outgoing_host(request.url or "")
        method = request.method.upper() if request.method else "GET"
        method = method if method in _METHODS else "other"
        for backend in stats.BACKENDS:
            backend.outgoing(host, method, str(status), seconds)
        timings = _request_timings.get()
        if timings is not None:
            timings.outgoing_seconds += seconds
            timings.outgoing_calls += 1
    except Exception as error:  # instrumentation never breaks the call it measures
        _OUTGOING_WARNING(f"cannot measure an outgoing call: {error!r}")


_OUTGOING_WARNING = RateLimitedWarning(source="c2cwsgiutils stats")


def init_db_spy(engine: Any = None) -> bool:
    """Time the SQL queries of ``engine`` (default: every engine); return False without SQLAlchemy.

    The include calls it without an engine when a backend is on, so apps need not.
    """
    try:
        from sqlalchemy import event  # noqa: PLC0415 (the db extra)
        from sqlalchemy.engine import Engine  # noqa: PLC0415
    except ImportError:
        return False
    target = Engine if engine is None else engine
    if not event.contains(target, "before_cursor_execute", _before_cursor_execute):
        event.listen(target, "before_cursor_execute", _before_cursor_execute)
        event.listen(target, "after_cursor_execute", _after_cursor_execute)
    return True


def includeme(config: Configurator) -> None:
    """Make the configured backends; add the views, the tween and the SQL timers if any is on."""
    if not first_time(config, "stats"):
        return
    settings = stats.StatsSettings.of(config)
    prometheus_settings = prometheus.PrometheusSettings.of(config)
    configure_backends(settings, prometheus_settings)
    if settings.view:
        ops_views.add_ops_view(
            config,
            "stats",
            "/stats.json",
            stats_view,
            secret=stats.StatsSettings.declaration("view_secret") if settings.view_secret else None,
            request_method=("GET", "HEAD"),
        )
        _start_stats_channel(config)
    if prometheus_settings.view:
        ops_views.add_ops_view(
            config,
            "metrics",
            "/metrics",
            prometheus.metrics_view,
            secret=prometheus.PrometheusSettings.declaration("secret")
            if prometheus_settings.secret
            else None,
            request_method=("GET", "HEAD"),
        )
    if not stats.BACKENDS:
        request_tracking.REQUESTS_HOOKS.measure = None
        return
    config.registry[_SERVER_TIMING_KEY] = settings.server_timing
    config.add_tween(TWEEN, under=(request_tracking.TWEEN, INGRESS), over=EXCVIEW)
    config.add_view_deriver(_render_timer, name="c2cwsgiutils_render_timer", under="rendered_view", over=VIEW)
    init_db_spy()
    request_tracking.REQUESTS_HOOKS.measure = measure_outgoing
    request_tracking.wrap_requests()


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.stats_pyramid")``."""
    config.include(includeme)
