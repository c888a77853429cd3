"""Per-request cost of c2cwsgiutils.db's session routing and SQL request IDs, against bare SQLAlchemy.

Three in-process Pyramid apps (all with ``c2cwsgiutils.pyramid`` included, so that only the
database part differs) answer ``GET /api/one`` with one ``SELECT 1`` on the local PostgreSQL
replica (``TEST_POSTGRES_REPLICA_URL``, default port 5433; the primary is ``TEST_POSTGRES_URL``):

- ``bare``: a plain SQLAlchemy ``Session`` on an engine of the replica, opened and closed per request;
- ``routed``: ``setup_session`` with the primary and the replica, the GET read going to the replica;
- ``routed + SQL request ID``: the same with ``C2C_SQL_REQUEST_ID`` on (one more round trip per
  transaction: ``set_config('application_name', ...)``).

All engines pre-ping at checkout (``setup_session``'s default, also set on the bare one), so each
request has the same two round trips plus the ones measured. Calls are interleaved in rounds after
a warm-up; the median over rounds of the mean µs per call is printed. Needs PostgreSQL and its
replica (``make services``).
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.threadlocal import manager
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, os.path.dirname(__file__))
import foundation  # type: ignore[import-not-found,unused-ignore]

import c2cwsgiutils.pyramid
from c2cwsgiutils.database import routing
from c2cwsgiutils.db import setup_session

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

PRIMARY = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPLICA = os.environ.get("TEST_POSTGRES_REPLICA_URL", "postgresql://postgres@127.0.0.1:5433/test")
SETTINGS = {"c2c.base_path": "/c2c", "c2c.requests_request_id": "false"}
# bench/foundation.py's request, on this benchmark's route and with an incoming request ID.
TEMPLATE: Environ = {**foundation.TEMPLATE, "PATH_INFO": "/api/one", "HTTP_X_REQUEST_ID": "3f1c2b7e-bench"}


def _app(
    settings: dict[str, str], session: Callable[[], Session], after: Callable[[Session], None]
) -> WSGIApp:
    config = Configurator(settings={**SETTINGS, **settings})
    config.include(c2cwsgiutils.pyramid.includeme)

    def one(request: Request) -> Response:
        db = session()
        try:
            value = db.execute(text("SELECT 1")).scalar()
        finally:
            after(db)
        return Response(body=b'{"one": %d}' % (value or 0), content_type="application/json")

    config.add_route("one", "/api/one")
    config.add_view(one, route_name="one", request_method="GET")
    app: WSGIApp = config.make_wsgi_app()
    return app


def bare_app() -> tuple[WSGIApp, sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(REPLICA, pool_pre_ping=True)
    return _app({}, sessionmaker(bind=engine), lambda db: db.close()), engine


def routed_app() -> tuple[WSGIApp, Any, list[sqlalchemy.Engine]]:
    config_settings = {"sqlalchemy.url": PRIMARY, "sqlalchemy_slave.url": REPLICA}
    config = Configurator(settings={**SETTINGS, **config_settings})
    factory, primary, replica = setup_session(config, "sqlalchemy", "sqlalchemy_slave")
    # The same app as the others, with the routed session; the tween of setup_session is replaced
    # by the view's own cleanup so that the three apps do the same work around the query.
    return _app({}, factory, lambda _db: factory.remove()), factory, [primary, replica]


def time_calls(app: WSGIApp, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        for _chunk in app(TEMPLATE.copy(), lambda *args: None):
            pass
    return (time.perf_counter_ns() - start) / calls / 1000


def routing_decision(factory: Any, engine: sqlalchemy.Engine, calls: int = 200_000) -> tuple[float, float]:
    """Return the µs of one ``get_bind`` in a GET request: a plain session's, the routing session's."""
    statement = text("SELECT 1")
    plain = Session(bind=engine)
    routed = factory()
    request = Request.blank("/api/one")
    manager.push({"request": request, "registry": None})
    try:
        timings: tuple[list[float], list[float]] = ([], [])
        for _ in range(5):
            for index, session in enumerate((plain, routed)):
                get_bind = session.get_bind
                start = time.perf_counter_ns()
                for _ in range(calls // 5):
                    get_bind(clause=statement)
                timings[index].append((time.perf_counter_ns() - start) / (calls // 5) / 1000)
        if routed.get_bind(clause=statement) is not factory.registry().c2c_router.replica:
            raise SystemExit("the routed GET does not read from the replica")
    finally:
        manager.pop()
        plain.close()
        factory.remove()
    return statistics.median(timings[0]), statistics.median(timings[1])


def check(app: WSGIApp) -> None:
    seen: dict[str, str] = {}
    body = b"".join(app(TEMPLATE.copy(), lambda status, headers, *_: seen.update(status=status)))
    if seen["status"] != "200 OK" or body != b'{"one": 1}':
        raise SystemExit(f"unexpected answer {seen} {body!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--calls", type=int, default=1_000, help="calls per app per round (default 1000)")
    args = parser.parse_args()
    bare, bare_engine = bare_app()
    routed, factory, engines = routed_app()
    plain_bind, routed_bind = routing_decision(factory, engines[1])
    print(
        f"routing decision per statement (get_bind in a GET request, no database): plain Session "
        f"{plain_bind:.2f} µs, routing session {routed_bind:.2f} µs, added {routed_bind - plain_bind:.2f} µs"
    )
    # (name, app, set up before its calls, undo after): SQL request IDs are a process-wide listener.
    variants: list[tuple[str, WSGIApp, Callable[[], None], Callable[[], None]]] = [
        ("bare SQLAlchemy", bare, routing.stop_request_id, routing.stop_request_id),
        ("routed", routed, routing.stop_request_id, routing.stop_request_id),
        ("routed + SQL request ID", routed, routing.listen_request_id, routing.stop_request_id),
    ]
    results: dict[str, list[float]] = {name: [] for name, *_ in variants}
    for _name, app, enter, leave in variants:
        enter()
        check(app)
        time_calls(app, max(args.calls // 10, 50))
        leave()
    for round_number in range(args.rounds):
        ordered = variants if round_number % 2 == 0 else list(reversed(variants))
        for name, app, enter, leave in ordered:
            enter()
            results[name].append(time_calls(app, args.calls))
            leave()
    baseline = statistics.median(results["bare SQLAlchemy"])
    print(f"{'case':<26}{'µs/request':>12}{'added µs':>10}{'ratio':>7}")
    for name, *_ in variants:
        median = statistics.median(results[name])
        print(f"{name:<26}{median:>12.1f}{median - baseline:>10.1f}{median / baseline:>7.2f}")
    bare_engine.dispose()
    for engine in engines:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
