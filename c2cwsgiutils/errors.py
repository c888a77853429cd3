"""Exception views that answer every error as JSON: ``{"status": N, "message": "..."}``.

- A Pyramid HTTP exception keeps its status and its headers (``Location``, ``WWW-Authenticate``,
  ``Allow``...); an unknown route is a 404.
- An SQLAlchemy ``IntegrityError`` is the client's fault (a duplicate, a missing reference): 400.
- A client that hangs up while sending its request is logged at INFO: nothing is broken.
- Anything else is a 500, logged once with its traceback and request ID. The client sees the
  exception text and a ``stacktrace`` only in development mode (``DEVELOPMENT=1``).

WebOb drops the body of any response to a HEAD request, so these views need not care.
"""

import logging
import traceback
from typing import Any

from gunicorn.http.errors import NoMoreData
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from sqlalchemy.exc import IntegrityError
from webob.request import DisconnectionError

from c2cwsgiutils import config as c2c_config
from c2cwsgiutils.include import first_time
from c2cwsgiutils.routing import json_response

LOG = logging.getLogger(__name__)

# Headers of an HTTP exception that describe its own HTML/text body, which we replace.
_BODY_HEADERS = frozenset(("content-type", "content-length"))
CLIENT_CLOSED_REQUEST = 499  # nginx's code for it; no standard one exists


def _request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request, "c2c_request_id", None)
    return request_id


def _body(request: Request, status: int, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "message": message}
    request_id = _request_id(request)
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return body


class ErrorViews:
    """The exception views, bound to the development flag resolved at start-up."""

    def __init__(self, development: bool) -> None:
        self.development = development

    def http_exception(self, exc: HTTPException, request: Request) -> Response:
        """Answer a Pyramid HTTP exception with its own status and headers."""
        message = str(exc.detail) if exc.detail else (exc.explanation or exc.title)
        level = logging.WARNING if exc.code >= 500 else logging.DEBUG
        LOG.log(level, "%s %s: %s %s", request.method, request.path, exc.code, message, extra=_extra(request))
        headers = [(name, value) for name, value in exc.headerlist if name.lower() not in _BODY_HEADERS]
        if exc.empty_body:  # 204, 205 and 304 must not have one
            response = Response(status=exc.status, headerlist=headers)
            del response.content_type
            return response
        response = json_response(_body(request, exc.code, message), headers=headers)
        response.status = exc.status
        return response

    def integrity_error(self, exc: IntegrityError, request: Request) -> Response:
        """Answer a database integrity error as the client's mistake (400)."""
        # The driver's own message names the constraint; SQLAlchemy's str() would add the
        # statement and its parameters, which are not the client's business.
        message = " ".join(str(exc.orig).split()) if exc.orig is not None else "integrity error"
        LOG.info("%s %s: integrity error: %s", request.method, request.path, message, extra=_extra(request))
        return json_response(_body(request, 400, message), status=400)

    def client_disconnected(self, exc: Exception, request: Request) -> Response:
        """Log a client that hung up mid-request; the answer goes nowhere."""
        LOG.info("%s %s: client disconnected: %s", request.method, request.path, exc, extra=_extra(request))
        response = json_response(_body(request, CLIENT_CLOSED_REQUEST, "client disconnected"))
        response.status = f"{CLIENT_CLOSED_REQUEST} Client Closed Request"
        return response

    def unexpected(self, exc: Exception, request: Request) -> Response:
        """Answer any other exception with a 500, logged once with its traceback."""
        LOG.error(
            "%s %s failed (request_id=%s)",
            request.method,
            request.path,
            _request_id(request),
            exc_info=exc,
            extra=_extra(request),
        )
        if self.development:
            body = _body(
                request,
                500,
                f"{type(exc).__name__}: {exc}",
                stacktrace=traceback.format_exception(exc),
            )
        else:
            body = _body(request, 500, "Internal server error")
        return json_response(body, status=500)


def _extra(request: Request) -> dict[str, Any]:
    return {"request_id": _request_id(request)}


def includeme(config: Configurator) -> None:
    """Register the JSON exception views."""
    if not first_time(config, "errors"):
        return
    views = ErrorViews(c2c_config.development(config.get_settings()))
    config.add_exception_view(views.http_exception, context=HTTPException)
    config.add_exception_view(views.integrity_error, context=IntegrityError)
    for context in (DisconnectionError, NoMoreData):
        config.add_exception_view(views.client_disconnected, context=context)
    config.add_exception_view(views.unexpected, context=Exception)
