"""The example app's views, including some that fail on demand to show the JSON errors."""

import logging
import time
from typing import Any

import zope.sqlalchemy
from pyramid import httpexceptions
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from c2cwsgiutils import sentry, stats
from c2cwsgiutils.db import engine_of
from c2cwsgiutils.request_params import ParamError, duration_param, int_param
from c2cwsgiutils_app import models
from c2cwsgiutils_app.models import Hello

LOG = logging.getLogger(__name__)

# Statuses /api/error?status=N raises, with the header each one needs.
_HTTP_ERRORS: dict[int, Any] = {
    302: lambda: httpexceptions.HTTPFound(location="/api/ping"),
    400: lambda: httpexceptions.HTTPBadRequest("bad request on demand"),
    401: lambda: httpexceptions.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="app"'}),
    403: lambda: httpexceptions.HTTPForbidden("forbidden on demand"),
    405: lambda: httpexceptions.HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"}),
    503: lambda: httpexceptions.HTTPServiceUnavailable(headers={"Retry-After": "10"}),
}


def ping(request: Request) -> dict[str, Any]:
    """Answer that the app is up."""
    return {"pong": True}


def _engine(session: Session) -> dict[str, Any]:
    """Say which engine the session uses now and, on PostgreSQL, whether that server is a replica."""
    answer: dict[str, Any] = {"engine": engine_of(session)}
    if session.get_bind(clause=select(1)).dialect.name == "postgresql":
        answer["in_recovery"] = session.scalar(select(func.pg_is_in_recovery()))
    return answer


def hello_list(request: Request) -> dict[str, Any]:
    """List the greetings, saying which engine answered (a GET reads from the replica)."""
    session = models.DBSession()
    values = session.scalars(select(Hello.value).order_by(Hello.id)).all()
    return {"values": list(values), **_engine(session)}


def _greeting(value: Any) -> str:
    """Return a greeting to store: text of 1 to 200 characters, all of them valid Unicode."""
    # A JSON body may hold a lone surrogate ("\ud800"), which no database encoding takes.
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not _encodable(value):
        raise httpexceptions.HTTPBadRequest("value must be a string of 1 to 200 Unicode characters")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def hello_write(request: Request) -> dict[str, Any]:
    """Store ``?value=`` in a GET through the session's connection, which no routing rule can see.

    On ``/api/hello/write`` the replica refuses it (read-only transaction, a 500);
    ``/api/hello/forced_write`` is forced to the primary by ``force_master`` and succeeds.
    """
    value = _greeting(request.params.get("value"))
    session = models.DBSession()
    session.connection().execute(insert(Hello).values(value=value))
    # The transaction manager commits after the view; a write it cannot see must be marked.
    zope.sqlalchemy.mark_changed(session)
    return {"value": value, **_engine(session)}


def hello_post(request: Request) -> dict[str, Any]:
    """Add a greeting: ``{"value": "..."}``; a duplicate is an integrity error, answered 400."""
    LOG.debug("reading the body of request %s", request.c2c_request_id)
    try:
        value = request.json_body["value"]
    except (ValueError, KeyError, TypeError):
        raise httpexceptions.HTTPBadRequest('expected a JSON body like {"value": "hi"}') from None
    value = _greeting(value)
    session = models.DBSession()
    session.add(Hello(value=value))
    # Committed by pyramid_tm after the view (a duplicate is found here, at the flush: a 400).
    session.flush()
    # Read after write: this request reads from the primary, which has the new row.
    count = session.scalar(select(func.count()).select_from(Hello).where(Hello.value == value))
    request.response.status = 201
    return {"value": value, "found": count, **_engine(session)}


def greetings_list(request: Request) -> dict[str, Any]:
    """List the greetings through ``request.dbsession`` (a GET reads from the replica)."""
    values = request.dbsession.scalars(select(Hello.value).order_by(Hello.id)).all()
    return {"values": list(values), **_engine(request.dbsession)}


def greetings_post(request: Request) -> dict[str, Any]:
    """Add ``?value=`` through ``request.dbsession``: pyramid_tm commits it when the view returns.

    With ``&fail=1`` the view raises after the flush, and the greeting is rolled back.
    """
    value = _greeting(request.params.get("value"))
    request.dbsession.add(Hello(value=value))
    request.dbsession.flush()
    if request.params.get("fail"):
        raise httpexceptions.HTTPBadRequest("failing on demand: the greeting is rolled back")
    request.response.status = 201
    return {"value": value, **_engine(request.dbsession)}


def error(request: Request) -> dict[str, Any]:
    """Fail on demand: ``?status=N`` raises that HTTP error, ``?status=500`` an unexpected exception."""
    # Every parameter has a type, a range and a size: a bad one is a 400, never a 500.
    try:
        status = int_param(request, "status", 500, 100, 599)
    except ParamError as error:
        raise httpexceptions.HTTPBadRequest(str(error)) from None
    stats.increment_counter(["errors_on_demand"], tags={"status": str(status)})
    if status == 500:
        # Reported to Sentry when SENTRY_URL is set (once: the JSON error view's log record of the
        # same exception is not a second event); a no-op otherwise.
        with sentry.capture_exceptions():
            raise RuntimeError("failure on demand")
    make_error = _HTTP_ERRORS.get(status)
    if make_error is None:
        raise httpexceptions.HTTPBadRequest(f"status must be 500 or one of {sorted(_HTTP_ERRORS)}")
    raise make_error()


def sleep(request: Request) -> dict[str, Any]:
    """Answer after ``?seconds=`` (at most 10), to have requests in flight."""
    try:
        seconds = duration_param(request, "seconds", 1.0, 10.0)
    except ParamError as error:
        raise httpexceptions.HTTPBadRequest(str(error)) from None
    LOG.info("sleeping %ss for request %s", seconds, request.c2c_request_id)
    # The app's own timer: "sleep" in stats.json, <prefix>.sleep (statsd), <prefix>sleep_seconds.
    with stats.timer_context(["sleep"]):
        time.sleep(seconds)
    return {"slept": seconds}


def includeme(config: Configurator) -> None:
    """Add the app's routes and views."""
    config.add_route("ping", "/api/ping")
    config.add_view(ping, route_name="ping", renderer="json", request_method=("GET", "HEAD"))
    config.add_route("hello", "/api/hello")
    config.add_view(hello_list, route_name="hello", renderer="json", request_method=("GET", "HEAD"))
    config.add_view(hello_post, route_name="hello", renderer="json", request_method="POST")
    config.add_route("hello_write", "/api/hello/write")
    config.add_view(hello_write, route_name="hello_write", renderer="json", request_method="GET")
    config.add_route("hello_forced_write", "/api/hello/forced_write")
    config.add_view(hello_write, route_name="hello_forced_write", renderer="json", request_method="GET")
    config.add_route("greetings", "/api/greetings")
    config.add_view(greetings_list, route_name="greetings", renderer="json", request_method=("GET", "HEAD"))
    config.add_view(greetings_post, route_name="greetings", renderer="json", request_method="POST")
    config.add_route("error", "/api/error")
    config.add_view(error, route_name="error", renderer="json")
    config.add_route("sleep", "/api/sleep")
    config.add_view(sleep, route_name="sleep", renderer="json")
