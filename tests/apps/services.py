"""Services made with c2cwsgiutils.services.create, and a plain route, for tests/unit/test_services.py."""

from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils import services

with_credentials = services.create("with_credentials", "/with_credentials", cors_credentials=True)
without_credentials = services.create("without_credentials", "/without_credentials")
only_from = services.create("only_from", "/only_from", cors_origins=("https://allowed.example",))
cached = services.create("cached", "/cached")


def _needs_name(request: Request, **kwargs: Any) -> None:
    """A cornice validator: ``?name=`` is required."""
    if not request.params.get("name"):
        request.errors.add("querystring", "name", "name is required")
    else:
        request.validated["name"] = request.params["name"]


@with_credentials.get()
def with_credentials_get(request: Request) -> dict[str, Any]:
    return {"hello": True, "cookie": request.cookies.get("session")}


@with_credentials.post(validators=(_needs_name,))
def with_credentials_post(request: Request) -> dict[str, Any]:
    return {"name": request.validated["name"]}


@without_credentials.get()
def without_credentials_get(request: Request) -> dict[str, Any]:
    return {"hello": True}


@only_from.get()
def only_from_get(request: Request) -> dict[str, Any]:
    return {"hello": True}


@cached.get()
def cached_get(request: Request) -> dict[str, Any]:
    request.response.cache_control = "max-age=60, public"
    return {"cached": True}


@without_credentials.put()
def without_credentials_put(request: Request) -> dict[str, Any]:
    raise RuntimeError("failure in a service")


def plain(request: Request) -> dict[str, Any]:
    return {"plain": True}


def make_app(settings: dict[str, Any] | None = None, include_cornice: bool = False) -> Any:
    """Build the app; optionally the app includes cornice itself, after the toolkit."""
    config = Configurator(settings=settings or {})
    config.include(c2cwsgiutils.pyramid.includeme)
    if include_cornice:
        config.include("cornice")
    config.add_route("plain", "/plain")
    config.add_view(plain, route_name="plain", renderer="json", request_method="GET")
    config.scan("tests.apps.services")
    return config.make_wsgi_app()
