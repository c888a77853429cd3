"""The ops views' URL space: every c2cwsgiutils view lives under ``C2C_BASE_PATH`` (default ``/c2c``).

Features add their views with :func:`add_ops_view`; a view that reveals or changes state names
the secret setting that guards it, and is switched on only when that secret is set.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import auth
from c2cwsgiutils.config_utils import Setting, SettingsGroup, parse_base_path, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.responses import json_response

_OPS_VIEWS_KEY = "c2cwsgiutils.ops_views"


@dataclasses.dataclass(frozen=True)
class OpsViewsSettings(SettingsGroup):
    """Where the ops views live."""

    TITLE = "Ops views"

    base_path: str = setting(
        "C2C_BASE_PATH",
        "c2c.base_path",
        "/c2c",
        "URL prefix of every c2cwsgiutils view; `/` puts them at the root.",
        parse=parse_base_path,
    )


def base_path(config: Configurator) -> str:
    """Return the resolved ``C2C_BASE_PATH``."""
    return OpsViewsSettings.of(config).base_path


def add_ops_view(
    config: Configurator,
    name: str,
    path: str,
    view: Callable[[Request], Any],
    *,
    secret: Setting[str | None] | None = None,
    **view_options: Any,
) -> str | None:
    """Add an ops view at ``{C2C_BASE_PATH}{path}`` and list it in the index.

    With ``secret`` (the declaration of the setting holding it), the view exists only when that
    setting is set, and answers 403 unless the request carries it (:mod:`c2cwsgiutils.auth`).
    Return the view's full path, or None when it is off.
    """
    if secret is not None:
        expected = secret.resolve(config.get_settings())
        if not expected:
            return None
        view = auth.guard(view, expected)
    full_path = base_path(config) + path
    route_name = f"c2c_{name}"
    config.add_route(route_name, full_path)
    config.add_view(view, route_name=route_name, **view_options)
    config.registry.setdefault(_OPS_VIEWS_KEY, {})[name] = full_path
    return full_path


def ops_views(request: Request) -> dict[str, str]:
    """Return the ops views switched on, by name."""
    views: dict[str, str] = request.registry.get(_OPS_VIEWS_KEY, {})
    return views


def _index(request: Request) -> Response:
    prefix = OpsViewsSettings.of(request).base_path
    return json_response({"base_path": prefix, "views": ops_views(request)})


def includeme(config: Configurator) -> None:
    """Add the index of ops views at ``{C2C_BASE_PATH}/``."""
    if not first_time(config, "ops_views"):
        return
    prefix = base_path(config)
    if not prefix:
        # With the ops views at the root, an index there would take the app's own home page.
        return
    config.add_route("c2c_index", prefix + "{slash:/?}")
    config.add_view(_index, route_name="c2c_index", request_method=("GET", "HEAD"))
