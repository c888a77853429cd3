"""The one secret check of every protected ops view.

A view that reveals or changes state is switched on only when its secret setting is set
(``LOG_VIEW_SECRET``, ``SQL_PROFILER_SECRET``...). The client sends the secret in the
``X-API-Key`` header (preferred: headers stay out of access logs) or in the ``secret`` query
parameter (the original's form). It is compared in constant time; a missing or wrong secret is
a 403 JSON answer.
"""

import hmac
from collections.abc import Callable
from typing import Any

from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request

from c2cwsgiutils import config_utils
from c2cwsgiutils.responses import json_error

HEADER = "X-API-Key"
PARAM = "secret"
FORBIDDEN_MESSAGE = f"missing or wrong secret: send it in the {HEADER} header or the {PARAM} query parameter"

View = Callable[[Request], Any]


def provided_secret(request: Request) -> str | None:
    """Return the secret the client sent, from the header or else the query string."""
    value: str | None = request.headers.get(HEADER) or request.GET.get(PARAM)
    return value


def is_authorized(request: Request, expected: str) -> bool:
    """Tell whether the request carries the expected (non-empty) secret."""
    given = provided_secret(request)
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def guard(view: View, expected: str) -> View:
    """Wrap a view so that it answers 403 JSON unless the request carries ``expected``."""

    def guarded_view(request: Request) -> Any:
        if not is_authorized(request, expected):
            return json_error(403, FORBIDDEN_MESSAGE, getattr(request, "c2c_request_id", None))
        return view(request)

    guarded_view.__doc__ = view.__doc__
    return guarded_view


# The original c2cwsgiutils' names, for apps that protect views of their own with it.


def is_auth(request: Request, env_name: str | None = None, config_name: str | None = None) -> bool:
    """Tell whether the request carries the secret of ``env_name``/``config_name`` (unset: never)."""
    expected = config_utils.get_str(request.registry.settings, env_name, config_name, "")
    return is_authorized(request, expected)


def auth_view(request: Request, env_name: str | None = None, config_name: str | None = None) -> None:
    """Raise a 403 unless the request carries the secret of ``env_name``/``config_name``."""
    if not is_auth(request, env_name, config_name):
        raise HTTPForbidden(FORBIDDEN_MESSAGE)
