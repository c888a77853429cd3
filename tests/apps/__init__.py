"""Small in-process Pyramid apps for the library's tests."""

from collections.abc import Callable, Mapping
from typing import Any

import webtest
from pyramid.config import Configurator
from pyramid.request import Request

View = Callable[[Request], Any]


def make_app(
    views: Mapping[str, View] | None = None,
    settings: Mapping[str, Any] | None = None,
    include: str = "c2cwsgiutils.pyramid",
) -> webtest.TestApp:
    """Return a WebTest app with the include and one JSON-rendered route per view, at ``/{name}``."""
    config = Configurator(settings=dict(settings or {}))
    config.include(include)
    for name, view in (views or {}).items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, renderer="json")
    return webtest.TestApp(config.make_wsgi_app())
