"""The one secret check of every protected ops view.

A view that reveals or changes state is switched on only when its secret setting is set
(``LOG_VIEW_SECRET``, ``SQL_PROFILER_SECRET``...). The client sends the secret in the
``X-API-Key`` header (preferred: headers stay out of access logs) or in the ``secret`` query
parameter (the original's form). It is compared in constant time; a missing or wrong secret is
a 403 JSON answer.

The ops page signs a browser in with a session cookie instead (:data:`COOKIE`, scoped to
``C2C_BASE_PATH``, ``Secure; HttpOnly; SameSite=Strict``). Its value is never the secret: it is
one or more tokens ``<expiry>.<mac>``, the mac being an HMAC-SHA256 of the expiry with a key
derived from one secret. So a token opens exactly the views guarded by the secret it was made
with, until its expiry, and whoever holds no secret cannot make one.
"""

import base64
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from typing import Any

from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request

from c2cwsgiutils import config_utils, request_tracking
from c2cwsgiutils.config_utils import is_ascii_int
from c2cwsgiutils.responses import json_error

HEADER = "X-API-Key"
PARAM = "secret"
FORBIDDEN_MESSAGE = f"missing or wrong secret: send it in the {HEADER} header or the {PARAM} query parameter"

View = Callable[[Request], Any]


def secrets_equal(given: str, expected: str) -> bool:
    """Compare two secrets in constant time, whatever their lengths.

    ``hmac.compare_digest`` returns at once when the lengths differ, which tells the secret's
    length: compare their SHA-256 digests, always of equal length, instead.
    """
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogateescape")).digest(),
    )


def provided_secret(request: Request) -> str | None:
    """Return the secret the client sent, from the header or else the query string."""
    value: str | None = request.headers.get(HEADER) or request.GET.get(PARAM)
    return value


COOKIE = "c2c_ops_session"
LIFETIME_KEY = "c2cwsgiutils.auth.session_lifetime"
"""Registry key of the session lifetime in seconds (set by :mod:`c2cwsgiutils.ops_views`)."""
_KEY_LABEL = b"c2cwsgiutils ops page session v1"
# A cookie holds at most one token per distinct secret; beyond this many it is not looked at.
MAX_TOKENS = 8
_FETCH_SITES = frozenset(("same-origin", "none"))


@functools.lru_cache(maxsize=64)
def _cookie_key(secret: str) -> bytes:
    """Derive the signing key of the session tokens from a secret (never the secret itself)."""
    return hmac.digest(secret.encode("utf-8"), _KEY_LABEL, "sha256")


def _mac(secret: str, expiry: int) -> str:
    digest = hmac.digest(_cookie_key(secret), str(expiry).encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(secret: str, expiry: int) -> str:
    """Return a session token that opens the views guarded by ``secret`` until ``expiry`` (Unix time)."""
    return f"{expiry}.{_mac(secret, expiry)}"


def split_tokens(cookie: str | None) -> list[str]:
    """Return the tokens of a session cookie's value (at most :data:`MAX_TOKENS`)."""
    return [token for token in (cookie or "").split("~") if token][:MAX_TOKENS]


def token_expiry(token: str, secret: str, max_lifetime: float | None = None) -> int | None:
    """Return the expiry of a token made with ``secret`` that still holds, else None.

    With ``max_lifetime``, a token that claims to live longer than that from now is refused too
    (a token made before the lifetime setting was shortened).
    """
    expiry_text, _, mac = token.partition(".")
    if not is_ascii_int(expiry_text) or len(expiry_text) > 12 or not secret:
        return None
    expiry = int(expiry_text)
    now = time.time()
    if expiry <= now or (max_lifetime is not None and expiry > now + max_lifetime + 1):
        return None
    if not secrets_equal(mac, _mac(secret, expiry)):
        return None
    return expiry


def merge_tokens(tokens: Iterable[str], secret: str, secrets: Iterable[str], expiry: int) -> str:
    """Return a cookie value: a new token for ``secret``, and the old tokens still valid for the others."""
    others = [other for other in set(secrets) if not secrets_equal(other, secret)]
    kept = [token for token in tokens if any(token_expiry(token, other) for other in others)]
    return "~".join([make_token(secret, expiry), *kept][:MAX_TOKENS])


def same_origin(request: Request) -> bool:
    """Tell whether the browser says the request comes from the ops page's own origin.

    SameSite=Strict keeps the cookie from other sites, but not from another origin of the same
    site (a sibling subdomain): the Fetch metadata (or, from older browsers, Origin) says which.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in _FETCH_SITES
    origin = request.headers.get("Origin")
    return origin is None or origin.partition("://")[2] == request.host


def session_cookie(request: Request) -> str | None:
    """Return the session cookie's value (None when absent, or when the Cookie header is not UTF-8)."""
    try:
        value: str | None = request.cookies.get(COOKIE)
    except UnicodeDecodeError:  # WebOb decodes every cookie of the header at once
        return None
    return value


def cookie_expiry(request: Request, expected: str) -> int | None:
    """Return the expiry of the request's session token for ``expected``, if one holds."""
    cookie = session_cookie(request)
    if not cookie or not expected or not same_origin(request):
        return None
    max_lifetime = request.registry.get(LIFETIME_KEY)
    for token in split_tokens(cookie):
        expiry = token_expiry(token, expected, max_lifetime)
        if expiry is not None:
            return expiry
    return None


def is_authorized(request: Request, expected: str) -> bool:
    """Tell whether the request carries the expected (non-empty) secret, or a session token for it."""
    if not expected:
        return False
    given = provided_secret(request)
    if given:
        return secrets_equal(given, expected)
    return cookie_expiry(request, expected) is not None


def guard(view: View, expected: str) -> View:
    """Wrap a view so that it answers 403 JSON unless the request carries ``expected``."""

    def guarded_view(request: Request) -> Any:
        if not is_authorized(request, expected):
            return json_error(403, FORBIDDEN_MESSAGE, request_tracking.request_id(request))
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
