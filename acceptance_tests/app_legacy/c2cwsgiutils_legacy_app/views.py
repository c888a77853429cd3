"""The legacy app's views: they add rows and return; the transaction manager commits after them."""

import logging
from typing import Any

from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import text

from c2cwsgiutils import stats
from c2cwsgiutils_legacy_app import models

LOG = logging.getLogger(__name__)


def _values(request: Request) -> list[str]:
    """Return the ``value`` of a JSON body (a string or a list), or the form's ``value`` fields."""
    if request.content_type == "application/json":
        value = request.json_body["value"]
        return value if isinstance(value, list) else [value]
    return list(request.POST.getall("value"))


def _in_recovery() -> bool:
    """Tell whether the session's database is a replica."""
    return bool(models.DBSession.execute(text("SELECT pg_is_in_recovery()")).scalar())


def _count(value: str) -> int:
    with stats.timer_context(["legacy", "hello", "count"]):
        return models.DBSession.query(models.Hello).filter(models.Hello.value == value).count()


@view_config(route_name="legacy_ping", renderer="json", http_cache=0)
def ping(request: Request) -> dict[str, Any]:
    """Answer that the app is up."""
    del request
    return {"pong": True}


@view_config(route_name="legacy_hello", request_method="GET", renderer="json", http_cache=0)
def hello_get(request: Request) -> dict[str, Any]:
    """Count the greetings of ``?value=`` (a GET: from the replica)."""
    value = request.params["value"]
    return {"value": value, "found": _count(value), "in_recovery": _in_recovery()}


@view_config(route_name="legacy_hello", request_method="POST", renderer="json", http_cache=0)
def hello_post(request: Request) -> dict[str, Any]:
    """Add the greetings posted, and return without committing: pyramid_tm commits."""
    values = _values(request)
    for value in values:
        models.DBSession.add(models.Hello(value=value))
        LOG.info("Hello %s added", value, extra={"hello_value": value})
    return {"values": values}


@view_config(route_name="legacy_hello_forced", renderer="json", http_cache=0)
def hello_forced(request: Request) -> dict[str, Any]:
    """Add a greeting in a GET, which ``force_master`` sends to the primary."""
    value = request.params["value"]
    models.DBSession.add(models.Hello(value=value))
    return {"value": value, "in_recovery": _in_recovery()}


@view_config(route_name="legacy_hello_search", renderer="json", http_cache=0)
def hello_search(request: Request) -> dict[str, Any]:
    """Count greetings in a POST, which ``force_slave`` sends to the replica."""
    (value,) = _values(request)
    return {"value": value, "found": _count(value), "in_recovery": _in_recovery()}
