"""The ops views' URL space: every c2cwsgiutils view lives under ``C2C_BASE_PATH`` (default ``/c2c``)."""

from collections.abc import Callable
from typing import Any

import orjson
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import config as c2c_config
from c2cwsgiutils.include import first_time

_BASE_PATH_KEY = "c2cwsgiutils.base_path"
_OPS_VIEWS_KEY = "c2cwsgiutils.ops_views"


def json_response(body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    """Return a JSON response, serialised with orjson."""
    response = Response(body=orjson.dumps(body), status=status, charset="utf-8")
    response.content_type = "application/json"
    if headers:
        response.headerlist.extend(headers)
    return response


def base_path(config: Configurator) -> str:
    """Return the resolved ``C2C_BASE_PATH``, resolving it the first time."""
    registry = config.registry
    if _BASE_PATH_KEY not in registry:
        registry[_BASE_PATH_KEY] = c2c_config.base_path(config.get_settings())
    return str(registry[_BASE_PATH_KEY])


def add_ops_view(
    config: Configurator, name: str, path: str, view: Callable[[Request], Any], **view_options: Any
) -> str:
    """Add an ops view at ``{C2C_BASE_PATH}{path}``, list it in the index, and return its full path."""
    full_path = base_path(config) + path
    route_name = f"c2c_{name}"
    config.add_route(route_name, full_path)
    config.add_view(view, route_name=route_name, **view_options)
    config.registry.setdefault(_OPS_VIEWS_KEY, {})[name] = full_path
    return full_path


def ops_views(request: Request) -> dict[str, str]:
    """Return the ops views registered so far, by name."""
    views: dict[str, str] = request.registry.get(_OPS_VIEWS_KEY, {})
    return views


def _index(request: Request) -> Response:
    return json_response({"base_path": request.registry[_BASE_PATH_KEY], "views": ops_views(request)})


def includeme(config: Configurator) -> None:
    """Add the index of ops views at ``{C2C_BASE_PATH}/``."""
    if not first_time(config, "routing"):
        return
    prefix = base_path(config)
    if not prefix:
        # With the ops views at the root, an index there would take the app's own home page.
        return
    config.add_route("c2c_index", prefix + "{slash:/?}")
    config.add_view(_index, route_name="c2c_index", request_method=("GET", "HEAD"))
