"""Exception views that answer every error as JSON: ``{"status": N, "message": "..."}``.

- A Pyramid HTTP exception keeps its status and its headers (``Location``, ``WWW-Authenticate``,
  ``Allow``...), and its own JSON body if it has one; an unknown route is a 404.
- A request the app cannot read (a URL or query string that is not UTF-8, a body that is not what
  its ``Content-Type`` says) is the client's fault: 400, wherever it was first read.
- An SQLAlchemy ``IntegrityError`` is the client's fault too (a duplicate, a missing reference):
  400 with the driver's first line; the rest only in development mode.
- A CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) to a route
  whose views do not answer ``OPTIONS`` is a 204 without CORS headers, which the browser reads as
  "no CORS here": not a 404, since the route exists.
- A client that hangs up or resets the connection while sending its request: 499, at INFO.
- Anything else is a 500, logged once with its traceback and request ID. The client sees the
  exception text and a ``stacktrace`` only in development mode (``DEVELOPMENT=1``).

WebOb drops the body of any response to a HEAD request, so these views need not care.
"""

import dataclasses
import importlib
import logging
import re
import traceback
from types import TracebackType
from typing import Any

import orjson
from pyramid.config import Configurator
from pyramid.exceptions import PredicateMismatch, URLDecodeError
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from webob.request import DisconnectionError

from c2cwsgiutils import request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.responses import json_response

LOG = logging.getLogger(__name__)

# Headers of an HTTP exception that describe its own HTML/text body, which we replace.
_BODY_HEADERS = frozenset(("content-type", "content-length"))
CLIENT_CLOSED_REQUEST = 499  # nginx's code for it; no standard one exists
# Modules that read and parse the request: an error raised inside them is about the request.
_REQUEST_READERS = ("webob.request", "webob.multidict", "webob.compat", "cgi", "multipart", "gunicorn.http")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclasses.dataclass(frozen=True)
class ErrorsSettings(SettingsGroup):
    """How much error bodies tell."""

    TITLE = "JSON errors"

    development: bool = setting(
        "DEVELOPMENT",
        "c2c.development",
        False,
        "Development mode: error bodies carry the exception text, database details and a "
        "`stacktrace`. Never in production.",
        parse=parse_bool,
    )


def _request_id(request: Request) -> str | None:
    request_id: str | None = request_tracking.request_id(request)
    return request_id


def describe(request: Request) -> str:
    """Return ``METHOD /path`` for a log line, safe whatever bytes the client sent."""
    path = request.environ.get("PATH_INFO", "")
    # PATH_INFO is the percent-decoded path as latin-1: it may hold any byte, even a newline.
    printable = _UNPRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", path)
    return f"{request.environ.get('REQUEST_METHOD', '?')} {printable}"


def raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    """Tell whether the exception was raised while code of one of these modules was running."""
    frame: TracebackType | None = exc.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.startswith(modules):
            return True
        frame = frame.tb_next
    return False


def error_body(request: Request, status: int, message: str, **extra: Any) -> dict[str, Any]:
    """Return the JSON body of an error: status, message, request ID and any extra fields."""
    body: dict[str, Any] = {"status": status, "message": message}
    request_id = _request_id(request)
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return body


def _own_json_body(exc: HTTPException) -> dict[str, Any] | None:
    """Return the JSON object an app gave its HTTP exception (``json_body=...``), if any."""
    if exc.content_type != "application/json" or not exc.body:
        return None
    try:
        body = orjson.loads(exc.body)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


class ErrorViews:
    """The exception views, bound to the settings resolved at start-up."""

    def __init__(self, settings: ErrorsSettings) -> None:
        self.development = settings.development

    def http_exception(self, exc: HTTPException, request: Request) -> Response:
        """Answer a Pyramid HTTP exception with its own status, headers and JSON body."""
        if isinstance(exc, PredicateMismatch) and is_unhandled_preflight(request):
            return self.preflight_without_cors(request)
        message = str(exc.detail) if exc.detail else (exc.explanation or exc.title)
        level = logging.WARNING if exc.code >= 500 else logging.DEBUG
        LOG.log(level, "%s: %s %s", describe(request), exc.code, message, extra=log_extra(request))
        headers = [(name, value) for name, value in exc.headerlist if name.lower() not in _BODY_HEADERS]
        if exc.empty_body:  # 204, 205 and 304 must not have one
            response = Response(status=exc.status, headerlist=headers)
            del response.content_type
            return response
        body = _own_json_body(exc)
        if body is None:
            body = error_body(request, exc.code, message)
        else:
            for key, value in error_body(request, exc.code, message).items():
                body.setdefault(key, value)
        response = json_response(body, headers=headers)
        response.status = exc.status
        return response

    def preflight_without_cors(self, request: Request) -> Response:
        """Answer a CORS preflight to a route that does not do CORS: 204, without any CORS header.

        The route exists (another method of it may well answer), so a 404 would be wrong; the
        absent ``Access-Control-Allow-Origin`` is what tells the browser to refuse the call.
        """
        LOG.debug("%s: CORS preflight to a route without CORS", describe(request), extra=log_extra(request))
        response = Response(status=204)
        del response.content_type
        return response

    def bad_url(self, exc: URLDecodeError, request: Request) -> Response:
        """Answer a URL whose path is not valid UTF-8."""
        LOG.info("%s: the path is not valid UTF-8", describe(request), extra=log_extra(request))
        return json_response(error_body(request, 400, "the URL path is not valid UTF-8"), status=400)

    def unreadable_request(self, exc: Exception, request: Request) -> Response:
        """Answer 400 to a request whose query string or body cannot be decoded as it says.

        Registered for ValueError, LookupError, RecursionError (JSON nested too deeply for the
        parser) and DeprecationWarning (WebOb's refusal of a form in another charset than
        UTF-8): anything else of those types, raised outside the request parsers, is an
        unexpected error.
        """
        if _is_lone_surrogate(exc):
            # JSON allows "\ud800"; no encoder of a database, a file or a socket takes it.
            message = "the request holds text that is not valid Unicode (a lone surrogate)"
            LOG.info("%s: %s", describe(request), message, extra=log_extra(request))
            return json_response(error_body(request, 400, message), status=400)
        if not raised_in(exc, _REQUEST_READERS):
            return self.unexpected(exc, request)
        if isinstance(exc, ValueError) and type(exc).__name__ == "JSONDecodeError":
            message = f"the request body is not valid JSON: {exc}"
        elif isinstance(exc, UnicodeDecodeError):
            message = f"the query string or body is not valid {exc.encoding}"
        elif isinstance(exc, LookupError):
            message = f"the request names an unknown charset: {exc}"
        elif isinstance(exc, RecursionError):
            message = "the request body is nested too deeply"
        elif isinstance(exc, DeprecationWarning):
            message = "the request's form must be sent in UTF-8"
        else:
            message = f"the request cannot be read: {exc}"
        LOG.info("%s: %s", describe(request), message, extra=log_extra(request))
        return json_response(error_body(request, 400, message), status=400)

    def integrity_error(self, exc: Any, request: Request) -> Response:
        """Answer a database integrity error as the client's mistake (400).

        The driver's first line names the constraint; the rest (PostgreSQL's DETAIL, which holds
        row values, and the constraint's table) only in development mode. SQLAlchemy's own text
        would add the statement and its parameters: never.
        """
        driver_message = str(exc.orig) if exc.orig is not None else "integrity error"
        lines = driver_message.strip().splitlines() or ["integrity error"]
        message = lines[0].strip()
        LOG.info("%s: integrity error: %s", describe(request), message, extra=log_extra(request))
        extra: dict[str, Any] = {}
        if self.development:
            extra["detail"] = "\n".join(line.strip() for line in lines[1:])
            diag = getattr(exc.orig, "diag", None)
            for name in ("table_name", "constraint_name"):
                value = getattr(diag, name, None)
                if value:
                    extra[name.removesuffix("_name")] = value
        return json_response(error_body(request, 400, message, **extra), status=400)

    def connection_error(self, exc: ConnectionError, request: Request) -> Response:
        """Answer a reset while the request was read as the client leaving, anything else as unexpected."""
        if raised_in(exc, _REQUEST_READERS):
            return self.client_disconnected(exc, request)
        return self.unexpected(exc, request)

    def client_disconnected(self, exc: Exception, request: Request) -> Response:
        """Log a client that hung up mid-request; the answer goes nowhere."""
        LOG.info("%s: client disconnected: %s", describe(request), exc, extra=log_extra(request))
        response = json_response(error_body(request, CLIENT_CLOSED_REQUEST, "client disconnected"))
        response.status = f"{CLIENT_CLOSED_REQUEST} Client Closed Request"
        return response

    def unexpected(self, exc: Exception, request: Request) -> Response:
        """Answer any other exception with a 500, logged once with its traceback."""
        # The request ID is a field of the record (and in the console format), not of the text.
        LOG.error("%s failed", describe(request), exc_info=exc, extra=log_extra(request))
        if self.development:
            # The original's message is str(exception); the type has a field of its own.
            body = error_body(
                request,
                500,
                str(exc),
                exception=type(exc).__name__,
                stacktrace=traceback.format_exception(exc),
            )
        else:
            body = error_body(request, 500, "Internal server error")
        return json_response(body, status=500)


def _is_lone_surrogate(exc: Exception) -> bool:
    """Tell whether the exception is an encoder's refusal of a lone surrogate (text from a JSON body)."""
    return isinstance(exc, UnicodeEncodeError) and exc.reason == "surrogates not allowed"


def log_extra(request: Request) -> dict[str, Any]:
    """Return the ``extra`` of an error's log record: the request ID."""
    return {"request_id": _request_id(request)}


def is_unhandled_preflight(request: Request) -> bool:
    """Tell whether the request is a CORS preflight to an existing route that no view answered."""
    return (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and "Origin" in request.headers
        and request.matched_route is not None
    )


def _optional_exception(module: str, name: str) -> type[Exception] | None:
    """Return an exception class of an optional library, or None when it is not installed."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return None
    exception: type[Exception] = getattr(imported, name)
    return exception


def includeme(config: Configurator) -> None:
    """Register the JSON exception views."""
    if not first_time(config, "errors"):
        return
    views = ErrorViews(ErrorsSettings.of(config))

    def add(view: Any, context: type[BaseException]) -> None:
        # As the original's: an error answer is never cached (Cache-Control: no-cache, no-store...).
        config.add_exception_view(view, context=context, http_cache=0)

    add(views.http_exception, HTTPException)
    add(views.bad_url, URLDecodeError)
    for context in (ValueError, LookupError, RecursionError, DeprecationWarning):
        add(views.unreadable_request, context)
    add(views.connection_error, ConnectionError)
    add(views.client_disconnected, DisconnectionError)
    # Optional libraries: their errors can only happen when they are installed.
    integrity_error = _optional_exception("sqlalchemy.exc", "IntegrityError")
    if integrity_error is not None:
        add(views.integrity_error, integrity_error)
    no_more_data = _optional_exception("gunicorn.http.errors", "NoMoreData")
    if no_more_data is not None:
        add(views.client_disconnected, no_more_data)
    add(views.unexpected, Exception)


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.errors")``."""
    config.include(includeme)
