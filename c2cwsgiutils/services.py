"""CORS web services: ``services.create(name, path, **kwargs)``, a drop-in for ``cornice.Service``.

::

    from c2cwsgiutils import services

    hello_service = services.create("hello", "/hello", cors_credentials=True)

    @hello_service.get()
    def hello_get(request):
        return {"hello": True}

On top of cornice's own behaviour, a service made here:

- answers CORS requests from any origin (``cors_origins=("*",)``), with a preflight that browsers
  cache for an hour and the usual request headers allowed; with ``cors_credentials=True`` the
  request's own origin is echoed (browsers refuse ``*`` with credentials) and ``Vary: Origin`` says
  so to caches. Every ``cors_*`` argument of cornice overrides these defaults;
- sends ``Cache-Control: no-cache`` unless the view set its own caching;
- answers validation failures as the toolkit's other errors, ``{"status": 400, "message": ...}``,
  with cornice's list of errors kept under ``errors``.

cornice (the ``services`` extra) is included in the app the first time a service is registered,
by ``config.scan()``: an app without services pays nothing for it. Its own exception views are
switched off (cornice's ``handle_exceptions`` setting defaults to false here), so errors keep the
toolkit's JSON answers, with the service's CORS headers.
"""

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import errors, extras
from c2cwsgiutils.include import first_time
from c2cwsgiutils.responses import json_response

DEFAULT_ORIGINS = ("*",)
DEFAULT_MAX_AGE = 3600  # seconds; Chromium caps it at two hours, Firefox at a day
# Allowed in requests (preflight) and exposed to the calling page in responses.
DEFAULT_HEADERS = ("Content-Type", "Authorization", "X-Requested-With", "X-Request-ID")
_DIRECTIVE = "add_cornice_service"
View = TypeVar("View", bound=Callable[..., Any])


class Service(Protocol):
    """The typed face of a ``cornice.Service``: its decorators keep the view's type."""

    name: str
    path: str

    def get(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the GET (and HEAD) view."""

    def post(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the POST view."""

    def put(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the PUT view."""

    def patch(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the PATCH view."""

    def delete(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the DELETE view."""

    def options(self, **kwargs: Any) -> Callable[[View], View]:
        """Register the decorated function as the OPTIONS view."""

    def __getattr__(self, name: str) -> Any:
        """Any other attribute of ``cornice.Service``."""


def cache_filter(response: Response, request: Request) -> Response:
    """Tell caches not to reuse the answer without asking, unless the view said otherwise."""
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"
    return response


def vary_origin_filter(response: Response, request: Request) -> Response:
    """Say that the answer depends on ``Origin``: cornice echoes it for credentialed services."""
    vary = response.vary or ()
    if "Origin" not in vary:
        response.vary = (*vary, "Origin")
    return response


def json_error_handler(request: Request) -> Response:
    """Answer cornice's validation errors as ``{"status", "message", "errors"}``."""
    status = int(getattr(request.errors, "status", 400))
    found = [dict(error) for error in request.errors]
    message = "; ".join(
        f"{error.get('location', '')} {error.get('name', '')}: {error.get('description', '')}".strip()
        for error in found
    )
    errors.LOG.info("%s: %s %s", errors.describe(request), status, message, extra=errors.log_extra(request))
    body = errors.error_body(request, status, message or "invalid request", errors=found)
    return json_response(body, status=status)


def create(name: str, path: str | None = None, **kwargs: Any) -> Service:
    """Return a ``cornice.Service`` with CORS, no caching and JSON errors by default.

    Every keyword argument of ``cornice.Service`` is accepted and wins over these defaults.
    """
    cornice_service = extras.require("cornice.service", "services", "c2cwsgiutils.services.create")
    kwargs.setdefault("cors_origins", DEFAULT_ORIGINS)
    kwargs.setdefault("cors_max_age", DEFAULT_MAX_AGE)
    kwargs.setdefault("cors_headers", DEFAULT_HEADERS)
    kwargs.setdefault("error_handler", json_error_handler)
    filters = kwargs.pop("filters", ())
    own_filters = list(filters) if isinstance(filters, list | tuple) else [filters]
    kwargs["filters"] = [cache_filter, vary_origin_filter, *own_filters]
    # venusian records the module that defines the service (for config.scan) from the call stack:
    # the caller of create(), not this module.
    kwargs["depth"] = kwargs.get("depth", 1) + 1
    return cast(Service, cornice_service.Service(name, path, **kwargs))


def include_cornice(config: Configurator) -> None:
    """Include cornice, with the toolkit's exception views kept in charge of errors."""
    if not first_time(config, "cornice"):
        return
    extras.require("cornice", "services", "c2cwsgiutils.services")
    config.registry.settings.setdefault("handle_exceptions", False)
    config.include("cornice")


def _lazy_add_cornice_service(config: Configurator, service: Any) -> None:
    """Include cornice on the first service registered, then register it as cornice does."""
    include_cornice(config)
    register: Callable[[Configurator, Any], None] = extras.require(
        "cornice.pyramidhook", "services", "c2cwsgiutils.services"
    ).register_service_views
    register(config, service)


def includeme(config: Configurator) -> None:
    """Make ``config.scan()`` register the app's services, including cornice only then."""
    if not first_time(config, "services"):
        return
    # The app's own config.include("cornice") keeps the toolkit's JSON errors too.
    config.registry.settings.setdefault("handle_exceptions", False)
    if not hasattr(config, _DIRECTIVE):
        config.add_directive(_DIRECTIVE, _lazy_add_cornice_service)
