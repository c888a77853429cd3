"""The ops views' URL space: every c2cwsgiutils view lives under ``C2C_BASE_PATH`` (default ``/c2c``).

Features add their views with :func:`add_ops_view`; a view that reveals or changes state names
the secret setting that guards it, and is switched on only when that secret is set.

Every ops view answers CORS requests with ``Access-Control-Allow-Origin: *`` and never with
``Access-Control-Allow-Credentials``: a dashboard on another origin may read a fleet's health
and versions, but a protected view still needs its secret in the request itself (the ops page's
session cookie is ``SameSite=Strict`` and is never accepted from another origin).

``{C2C_BASE_PATH}/`` lists the views as JSON, or shows the ops page to a browser: both are
:mod:`c2cwsgiutils.ops_page`'s.

No ops view reads more than :data:`MAX_BODY` bytes of a request's body, and this is checked
before the secret: a larger body is a 413 JSON answer, unread (a declared ``Content-Length`` is
believed) or cut off at the limit (chunked), so that no client, signed in or not, makes a worker
hold a large body.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import auth, request_tracking
from c2cwsgiutils.config_utils import (
    Setting,
    SettingsGroup,
    parse_base_path,
    parse_positive_duration,
    setting,
)
from c2cwsgiutils.include import first_time
from c2cwsgiutils.responses import json_error

_OPS_VIEWS_KEY = "c2cwsgiutils.ops_views"
_SECRETS_KEY = "c2cwsgiutils.ops_views.secrets"
_DEFAULT_METHODS = ("GET", "HEAD", "POST")
# What a cross-origin client may send: the secret's header, a body, and its own request ID.
CORS_ALLOW_HEADERS = "X-API-Key, Content-Type, Accept, X-Request-ID"
CORS_EXPOSE_HEADERS = "X-Request-ID"
CORS_MAX_AGE = "600"
MAX_BODY = 8 * 1024
"""The most an ops view reads of a request's body (its forms take a few short fields)."""


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
    session_lifetime: float = setting(
        "C2C_OPS_SESSION_LIFETIME",
        "c2c.ops_session_lifetime",
        3600.0,
        "How long the ops page's session cookie opens the protected views after the secret was entered.",
        parse=parse_positive_duration,
        default_doc="`1h`",
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
    max_body: int = MAX_BODY,
    **view_options: Any,
) -> str | None:
    """Add an ops view at ``{C2C_BASE_PATH}{path}`` and list it in the index.

    With ``secret`` (the declaration of the setting holding it), the view exists only when that
    setting is set, and answers 403 unless the request carries it (:mod:`c2cwsgiutils.auth`).
    A body over ``max_body`` bytes is a 413, unread. Return the view's full path, or None when it
    is off.
    """
    expected = None
    if secret is not None:
        expected = secret.resolve(config.get_settings())
        if not expected:
            return None
        view = auth.guard(view, expected)
    full_path = base_path(config) + path
    route_name = f"c2c_{name}"
    config.add_route(route_name, full_path)
    add_cors_views(config, route_name, view, view_options, max_body)
    config.registry.setdefault(_OPS_VIEWS_KEY, {})[name] = full_path
    if expected is not None:
        config.registry.setdefault(_SECRETS_KEY, {})[name] = expected
    return full_path


def _add_cors_headers(request: Request, response: Response) -> None:
    """Let any origin read the answer, without credentials (no Allow-Credentials, ever)."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def body_over(request: Request, limit: int) -> bool:
    """Tell whether the request's body is over ``limit`` bytes, reading at most ``limit + 1`` of it.

    A declared length is believed (nothing is read). A body of unknown length (chunked) is read up
    to the limit; when it fits, it is kept as the request's body, for the view to read.
    """
    length: int | None = request.content_length
    if length is not None:
        return length > limit
    if not request.is_body_readable:
        return False
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = request.body_file_raw.read(limit + 1 - size)  # a read may return less
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return True
    request.body = b"".join(chunks)
    return False


def add_cors_views(
    config: Configurator,
    route_name: str,
    view: Callable[[Request], Any],
    view_options: dict[str, Any],
    max_body: int = MAX_BODY,
) -> None:
    """Add ``view`` on a route with the ops views' CORS answer, and a view for CORS preflights.

    A request whose body is over ``max_body`` bytes gets a 413 without reaching ``view``.
    """

    def cors_view(request: Request) -> Any:
        # A response callback also reaches the error views' answers (a 403, a 500).
        request.add_response_callback(_add_cors_headers)
        if body_over(request, max_body):
            return json_error(
                413,
                f"the request's body is over {max_body} bytes, the most an ops view takes",
                request_tracking.request_id(request),
            )
        return view(request)

    cors_view.__doc__ = view.__doc__
    config.add_view(cors_view, route_name=route_name, **view_options)
    methods = view_options.get("request_method") or _DEFAULT_METHODS
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    allow_methods = ", ".join(methods)

    def preflight_view(request: Request) -> Response:
        """Answer a CORS preflight (and a plain OPTIONS): who may call, with what."""
        response = Response(status=204)
        response.headers["Allow"] = allow_methods
        response.headers["Access-Control-Allow-Methods"] = allow_methods
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        _add_cors_headers(request, response)
        return response

    if "OPTIONS" not in methods:
        config.add_view(preflight_view, route_name=route_name, request_method="OPTIONS")


def ops_views(request: Request) -> dict[str, str]:
    """Return the ops views switched on, by name."""
    views: dict[str, str] = request.registry.get(_OPS_VIEWS_KEY, {})
    return views


def view_secrets(request: Request) -> dict[str, str]:
    """Return the secret of each protected ops view that is on, by view name (never to be shown)."""
    secrets: dict[str, str] = request.registry.get(_SECRETS_KEY, {})
    return secrets


def includeme(config: Configurator) -> None:
    """Set the ops views up: the session lifetime, and the index at ``{C2C_BASE_PATH}/`` (ops_page's)."""
    if not first_time(config, "ops_views"):
        return
    settings = OpsViewsSettings.of(config)
    config.registry[auth.LIFETIME_KEY] = settings.session_lifetime
    config.include("c2cwsgiutils.ops_page")
