"""The apps the server benchmarks serve: bare Pyramid, and the same app with the toolkit.

- ``bare()`` / ``bare_sql()``: gunicorn app factories (``gunicorn "apps:bare()"``), plain Pyramid
  without the toolkit; ``bare_sql`` runs one ``SELECT 1`` per request through a plain SQLAlchemy
  session on ``BENCH_DB_URL``.
- ``full``: the PasteDeploy factory of :data:`FULL_INI`, served by ``c2cwsgiutils_run``: the same
  view with ``c2cwsgiutils.pyramid`` included (every feature its settings switch on); with
  ``bench.sql = true`` the query goes through ``setup_session``'s session instead.

Every app answers ``GET /hello`` (and ``/c2c/`` for the readiness probe of the full one).
"""

import os
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

import c2cwsgiutils.pyramid
from c2cwsgiutils.config_utils import parse_bool

DB_URL_ENV = "BENCH_DB_URL"
DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/test"

# No logging sections: the default configuration, built from LOG_TYPE & co, applies.
FULL_INI = """\
[app:main]
use = call:apps:full
bench.sql = {sql}
sqlalchemy.url = %(BENCH_DB_URL)s
"""


def _hello_view(query: Callable[[], Any] | None) -> Callable[[Request], Response]:
    def hello(request: Request) -> Response:
        del request
        if query is not None:
            query()
        return Response(body=b"hello", content_type="text/plain", charset="utf-8")

    return hello


def _app(config: Configurator, query: Callable[[], Any] | None) -> Any:
    config.add_route("hello", "/hello")
    config.add_view(_hello_view(query), route_name="hello", request_method="GET")
    return config.make_wsgi_app()


def bare() -> Any:
    """Return bare Pyramid's hello app."""
    return _app(Configurator(settings={}), None)


def bare_sql() -> Any:
    """Return bare Pyramid's hello app with one query per request on a plain SQLAlchemy session."""
    import sqlalchemy  # noqa: PLC0415 (the db extra, only for this app)
    from sqlalchemy.orm import Session  # noqa: PLC0415

    engine = sqlalchemy.create_engine(os.environ.get(DB_URL_ENV, DEFAULT_DB_URL), pool_pre_ping=True)
    statement = sqlalchemy.text("SELECT 1")

    def query() -> Any:
        with Session(engine) as session:
            return session.execute(statement).scalar()

    return _app(Configurator(settings={}), query)


def full(global_config: dict[str, str], **settings: str) -> Any:
    """Return the hello app with the toolkit included (the query through ``setup_session``)."""
    del global_config
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    query: Callable[[], Any] | None = None
    if parse_bool(settings.get("bench.sql", "false")):
        from sqlalchemy import text  # noqa: PLC0415 (the db extra, only for this app)

        from c2cwsgiutils.db import setup_session  # noqa: PLC0415

        factory = setup_session(config, "sqlalchemy")[0]
        statement = text("SELECT 1")

        def routed_query() -> Any:
            return factory().execute(statement).scalar()

        query = routed_query
    return _app(config, query)
