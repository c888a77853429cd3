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

Upstream 6.1's names are doors onto the same checks: :func:`auth_type` says which sign-in is
configured (``C2C_SECRET``, or GitHub with the ``C2C_AUTH_GITHUB_*`` settings, or none);
:func:`is_auth_user` and :func:`check_access` answer for either. The GitHub sign-in (the views are
:mod:`c2cwsgiutils.auth_github`'s) ends with a session cookie signed by the same HMAC machinery,
under a key derived from ``C2C_AUTH_GITHUB_SECRET`` for that purpose only; it carries the user's
identity and GitHub token, is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` and ``Secure``
over HTTPS, and, as the ops page's, is refused on requests from another origin.
"""

import base64
import binascii
import dataclasses
import enum
import functools
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any, TypedDict

import orjson
import requests
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request

from c2cwsgiutils import config_utils, request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, is_ascii_int, setting
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from c2cwsgiutils.responses import json_error

LOG = logging.getLogger(__name__)
_WARN = RateLimitedWarning(source="c2cwsgiutils auth", logger=LOG)

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
def _cookie_key(secret: str, label: bytes = _KEY_LABEL) -> bytes:
    """Derive a signing key from a secret (never the secret itself), one per purpose (``label``)."""
    return hmac.digest(secret.encode("utf-8"), label, "sha256")


def _mac(secret: str, message: str, label: bytes = _KEY_LABEL) -> str:
    digest = hmac.digest(_cookie_key(secret, label), message.encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(secret: str, expiry: int) -> str:
    """Return a session token that opens the views guarded by ``secret`` until ``expiry`` (Unix time)."""
    return f"{expiry}.{_mac(secret, str(expiry))}"


def _expiry_holds(expiry_text: str, max_lifetime: float | None) -> int | None:
    """Return the expiry when it is a sane Unix time still to come (and not beyond the lifetime)."""
    if not is_ascii_int(expiry_text) or len(expiry_text) > 12:
        return None
    expiry = int(expiry_text)
    now = time.time()
    if expiry <= now or (max_lifetime is not None and expiry > now + max_lifetime + 1):
        return None
    return expiry


def sign(secret: str, label: bytes, expiry: int, data: str) -> str:
    """Return ``<expiry>.<data>.<mac>``: ``data`` (ASCII, no dot) vouched for until ``expiry``.

    The tokens of :func:`make_token` with data attached, under a key of their own (``label``).
    """
    return f"{expiry}.{data}.{_mac(secret, f'{expiry}.{data}', label)}"


def unsign(value: str, secret: str, label: bytes, max_lifetime: float | None = None) -> str | None:
    """Return the data of a value made by :func:`sign` with ``secret`` and ``label`` that still holds."""
    parts = value.split(".")
    if len(parts) != 3 or not secret or not value.isascii():
        return None
    expiry_text, data, mac = parts
    if _expiry_holds(expiry_text, max_lifetime) is None:
        return None
    if not secrets_equal(mac, _mac(secret, f"{expiry_text}.{data}", label)):
        return None
    return data


def split_tokens(cookie: str | None) -> list[str]:
    """Return the tokens of a session cookie's value (at most :data:`MAX_TOKENS`)."""
    return [token for token in (cookie or "").split("~") if token][:MAX_TOKENS]


def token_expiry(token: str, secret: str, max_lifetime: float | None = None) -> int | None:
    """Return the expiry of a token made with ``secret`` that still holds, else None.

    With ``max_lifetime``, a token that claims to live longer than that from now is refused too
    (a token made before the lifetime setting was shortened).
    """
    expiry_text, _, mac = token.partition(".")
    expiry = _expiry_holds(expiry_text, max_lifetime)
    if expiry is None or not secret:
        return None
    if not secrets_equal(mac, _mac(secret, str(expiry))):
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


def session_cookie(request: Request, name: str = COOKIE) -> str | None:
    """Return a cookie's value: the ops page's session by default.

    None when absent, longer than :data:`MAX_COOKIE`, or when the Cookie header is not UTF-8.
    """
    try:
        value: str | None = request.cookies.get(name)
    except UnicodeDecodeError:  # WebOb decodes every cookie of the header at once
        return None
    return value if value is None or len(value) <= MAX_COOKIE else None


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
    """Wrap a view so that it answers 403 JSON unless the request carries ``expected``.

    With GitHub sign-in configured, a signed-in operator (:func:`is_operator`) is let in too.
    """

    def guarded_view(request: Request) -> Any:
        if not is_authorized(request, expected) and not is_operator(request):
            return json_error(403, FORBIDDEN_MESSAGE, request_tracking.request_id(request))
        return view(request)

    guarded_view.__doc__ = view.__doc__
    return guarded_view


# The original c2cwsgiutils' names, for apps that protect views of their own with it.


def is_auth(request: Request, env_name: str | None = None, config_name: str | None = None) -> bool:
    """Tell whether the request is signed in.

    Without names (upstream 6.1's call), as :func:`is_auth_user` says: ``C2C_SECRET``, or a GitHub
    sign-in. With names (the original's call), the request carries the secret of
    ``env_name``/``config_name`` (unset: never), or comes from a GitHub operator (:func:`is_operator`).
    """
    if env_name is None and config_name is None:
        return is_auth_user(request)[0]
    expected = config_utils.get_str(request.registry.settings, env_name, config_name, "")
    return is_authorized(request, expected) or is_operator(request)


def auth_view(request: Request, env_name: str | None = None, config_name: str | None = None) -> None:
    """Raise a 403 unless :func:`is_auth` says the request is signed in."""
    if not is_auth(request, env_name, config_name):
        raise HTTPForbidden(FORBIDDEN_MESSAGE)


# Upstream 6.1's names: which sign-in is configured, who is signed in, what they may do.

GITHUB_SECRET_MIN_LENGTH = 16
"""``C2C_AUTH_GITHUB_SECRET`` signs the sessions: shorter than this, GitHub sign-in stays off."""
ACCESS_TYPES = ("pull", "triage", "push", "maintain", "admin")
"""The repository permissions GitHub reports (``permissions`` of ``GET /repos/{owner}/{repo}``)."""
GITHUB_TIMEOUT = (5.0, 10.0)
"""Seconds to connect to GitHub and to wait for its answer."""
GITHUB_MAX_ANSWER = 64 * 1024
"""The largest answer of GitHub's read, in bytes: the reading stops there."""
PERMISSIONS_CACHE_SECONDS = 60.0
"""How long a user's permissions on a repository are kept before GitHub is asked again."""
FAILURE_CACHE_SECONDS = 10.0
"""How long a failure to ask GitHub counts as no access before GitHub is asked again."""
MAX_COOKIE = 4096
SESSION_LABEL = b"c2cwsgiutils github session v1"
_PERMISSIONS_KEY = "c2cwsgiutils.auth.github_permissions"
_MAX_PERMISSIONS = 1024
GITHUB_PATHS_KEY = "c2cwsgiutils.auth.github_paths"
"""Registry key of the GitHub sign-in views' paths, by name (set by :mod:`c2cwsgiutils.auth_github`)."""
_DEFAULT_LIFETIME = 3600.0
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_MAX_URL = 2048


def _parse_repository(raw: str) -> str:
    text = raw.strip()
    if not _REPOSITORY.match(text):
        raise ValueError("expected <organization>/<repository>")
    return text


def _parse_access_type(raw: str) -> str:
    text = raw.strip().lower()
    if text not in ACCESS_TYPES:
        raise ValueError(f"expected one of {', '.join(ACCESS_TYPES)}")
    return text


def _parse_url(raw: str) -> str:
    text = raw.strip()
    parts = urllib.parse.urlsplit(text)
    if (
        len(text) > _MAX_URL
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or any(char.isspace() or ord(char) < 0x20 for char in text)
    ):
        raise ValueError("expected an http(s) URL")
    return text.rstrip("/")


def _parse_cookie_name(raw: str) -> str:
    text = raw.strip()
    if not _COOKIE_NAME.match(text):
        raise ValueError("expected a cookie name (letters, digits and -_.)")
    return text


class AuthenticationType(enum.Enum):
    """Which sign-in is configured (upstream 6.1's values)."""

    NONE = 0
    """Neither: only the per-view secrets (``LOG_VIEW_SECRET``...) open anything."""
    SECRET = 1
    """``C2C_SECRET`` is set."""
    GITHUB = 2
    """The GitHub sign-in's client, repository and session secret are set (and no ``C2C_SECRET``)."""


@dataclasses.dataclass(frozen=True)
class AuthSettings(SettingsGroup):
    """Upstream 6.1's sign-in: one secret, or GitHub accounts with access to a repository."""

    TITLE = "Authentication"

    secret: str = setting(
        "C2C_SECRET",
        "c2c.secret",
        "",
        "Upstream's one secret: `is_auth(request)`, `auth_view(request)` and `check_access(request)` "
        "(without a setting name) accept it, from `X-API-Key` or `?secret=`. When set, GitHub sign-in "
        "is off.",
        secret=True,
    )
    github_client_id: str = setting(
        "C2C_AUTH_GITHUB_CLIENT_ID",
        "c2c.auth.github.client_id",
        "",
        "Client ID of the GitHub OAuth app (required for GitHub sign-in).",
    )
    github_client_secret: str = setting(
        "C2C_AUTH_GITHUB_CLIENT_SECRET",
        "c2c.auth.github.client_secret",
        "",
        "Client secret of the GitHub OAuth app (required for GitHub sign-in).",
        secret=True,
    )
    github_repository: str = setting(
        "C2C_AUTH_GITHUB_REPOSITORY",
        "c2c.auth.github.repository",
        "",
        "`<organization>/<repository>` whose permission makes an operator (required for GitHub sign-in).",
        parse=_parse_repository,
    )
    github_access_type: str = setting(
        "C2C_AUTH_GITHUB_ACCESS_TYPE",
        "c2c.auth.github.access_type",
        "push",
        "The permission on the repository that makes an operator: `pull`, `triage`, `push`, "
        "`maintain` or `admin`.",
        parse=_parse_access_type,
    )
    github_secret: str = setting(
        "C2C_AUTH_GITHUB_SECRET",
        "c2c.auth.github.auth.secret",
        "",
        f"Signs the GitHub session and state cookies (required for GitHub sign-in, at least "
        f"{GITHUB_SECRET_MIN_LENGTH} characters).",
        secret=True,
    )
    github_cookie: str = setting(
        "C2C_AUTH_GITHUB_COOKIE",
        "c2c.auth.github.auth.cookie",
        "c2c-auth-jwt",
        "Name of the GitHub session cookie (upstream's name; the value is our signed token, not a JWT).",
        parse=_parse_cookie_name,
    )
    github_scope: str = setting(
        "C2C_AUTH_GITHUB_SCOPE",
        "c2c.auth.github.scope",
        "repo",
        "OAuth scope asked of GitHub (`repo` lets GitHub report permissions on private repositories).",
    )
    github_auth_url: str = setting(
        "C2C_AUTH_GITHUB_AUTH_URL",
        "c2c.auth.github.auth_url",
        "https://github.com/login/oauth/authorize",
        "GitHub's authorization page, where the browser is sent to sign in.",
        parse=_parse_url,
    )
    github_token_url: str = setting(
        "C2C_AUTH_GITHUB_TOKEN_URL",
        "c2c.auth.github.token_url",
        "https://github.com/login/oauth/access_token",
        "Where the server exchanges the sign-in's code for a token.",
        parse=_parse_url,
    )
    github_user_url: str = setting(
        "C2C_AUTH_GITHUB_USER_URL",
        "c2c.auth.github.user_url",
        "https://api.github.com/user",
        "Where the server reads the signed-in user (login, name, profile URL).",
        parse=_parse_url,
    )
    github_repo_url: str = setting(
        "C2C_AUTH_GITHUB_REPO_URL",
        "c2c.auth.github.repo_url",
        "https://api.github.com/repos",
        "Where the server reads a repository's permissions (`<this>/<organization>/<repository>`).",
        parse=_parse_url,
    )
    github_proxy_url: str = setting(
        "C2C_AUTH_GITHUB_PROXY_URL",
        "c2c.auth.github.auth.proxy_url",
        "",
        "A redirect proxy between GitHub and the app (one OAuth app for several hosts): GitHub "
        "returns to `<this>?came_from=<callback>`.",
        parse=_parse_url,
    )

    def github_missing(self) -> list[str]:
        """Return the settings GitHub sign-in still needs (none: it is on, unless C2C_SECRET is set)."""
        required = {
            "C2C_AUTH_GITHUB_CLIENT_ID": self.github_client_id,
            "C2C_AUTH_GITHUB_CLIENT_SECRET": self.github_client_secret,
            "C2C_AUTH_GITHUB_REPOSITORY": self.github_repository,
            "C2C_AUTH_GITHUB_SECRET": self.github_secret,
        }
        missing = [name for name, value in required.items() if not value]
        if self.github_secret and len(self.github_secret) < GITHUB_SECRET_MIN_LENGTH:
            missing.append(f"C2C_AUTH_GITHUB_SECRET of {GITHUB_SECRET_MIN_LENGTH} characters or more")
        return missing

    @functools.cached_property  # the settings are frozen: asked on every guarded request
    def authentication_type(self) -> AuthenticationType:
        """Return which sign-in these settings configure (``C2C_SECRET`` first, as upstream)."""
        if self.secret:
            return AuthenticationType.SECRET
        if not self.github_missing():
            return AuthenticationType.GITHUB
        return AuthenticationType.NONE


def auth_type(settings: Mapping[str, Any] | None) -> AuthenticationType:
    """Return which sign-in the app's settings (and the environment) configure."""
    return AuthSettings.resolve(settings).authentication_type


# Upstream 6.1's names of the settings above, as constants: the environment variable (``*_ENV``)
# and the ini key (``*_PROP``), read from the declarations so that they cannot differ.
def _names(field: str) -> tuple[str, str]:
    declaration = AuthSettings.declaration(field)
    return declaration.env, str(declaration.ini)


SECRET_ENV, SECRET_PROP = _names("secret")
GITHUB_CLIENT_ID_ENV, GITHUB_CLIENT_ID_PROP = _names("github_client_id")
GITHUB_CLIENT_SECRET_ENV, GITHUB_CLIENT_SECRET_PROP = _names("github_client_secret")
GITHUB_AUTH_SECRET_ENV, GITHUB_AUTH_SECRET_PROP = _names("github_secret")
GITHUB_AUTH_COOKIE_ENV, GITHUB_AUTH_COOKIE_PROP = _names("github_cookie")
GITHUB_SCOPE_ENV, GITHUB_SCOPE_PROP = _names("github_scope")
GITHUB_SCOPE_DEFAULT: str = AuthSettings.declaration("github_scope").default
"""The scope asked of GitHub by default: ``repo`` lets it report permissions on private repositories."""
GITHUB_AUTH_URL_ENV, GITHUB_AUTH_URL_PROP = _names("github_auth_url")
GITHUB_TOKEN_URL_ENV, GITHUB_TOKEN_URL_PROP = _names("github_token_url")
GITHUB_USER_URL_ENV, GITHUB_USER_URL_PROP = _names("github_user_url")
GITHUB_AUTH_PROXY_URL_ENV, GITHUB_AUTH_PROXY_URL_PROP = _names("github_proxy_url")
# Upstream's switch between a session and a cookie for the GitHub sign-in's state. The setting
# has no effect here (it is not read): the sign-in's state is always checked, against its cookie.
USE_SESSION_ENV = "C2C_USE_SESSION"
USE_SESSION_PROP = "c2c.use_session"


def get_expected_secret(request: Request) -> str:
    """Return ``C2C_SECRET``, the secret :func:`is_auth` expects without names ("" when unset)."""
    return AuthSettings.of(request).secret


def is_enabled(config: Configurator, env_name: str | None = None, config_name: str | None = None) -> bool:
    """Tell whether a boolean switch (``C2C_..._VIEW_ENABLED``, or its ini key) is on; off by default.

    Upstream 6.1's helper, for an app that switches views of its own that way; the toolkit's
    views are switched on by their secrets instead.
    """
    return config_utils.get_bool(config.get_settings(), env_name, config_name, False)


class UserDetails(TypedDict, total=False):
    """The signed-in GitHub user: ``login``, ``name``, profile ``url``, and GitHub ``token``."""

    login: str
    name: str
    url: str
    token: str


class AuthConfig(TypedDict, total=False):
    """What :func:`check_access_config` checks: a permission on a repository.

    ``github_repository`` is ``<organization>/<repository>``; ``github_access_type`` one of
    :data:`ACCESS_TYPES`. A missing one takes the setting's value.
    """

    github_repository: str | None
    github_access_type: str | None


def urlsafe_text(data: bytes) -> str:
    """Return ``data`` as unpadded URL-safe base64 (fit for a cookie, with no dot)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def urlsafe_bytes(text: str) -> bytes:
    """Return the bytes of :func:`urlsafe_text`'s text (ValueError when it is not one)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_lifetime(request: Request) -> float:
    """Return how long a session lasts: ``C2C_OPS_SESSION_LIFETIME``, as the ops page's."""
    lifetime: float = request.registry.get(LIFETIME_KEY, _DEFAULT_LIFETIME)
    return lifetime


def github_session_value(secret: str, user: UserDetails, expiry: int) -> str:
    """Return the value of the GitHub session cookie that vouches for ``user`` until ``expiry``."""
    return sign(secret, SESSION_LABEL, expiry, urlsafe_text(orjson.dumps(dict(user))))


def _user_of(data: str) -> UserDetails | None:
    try:
        decoded = orjson.loads(urlsafe_bytes(data))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("login"), str):
        return None
    user = UserDetails()
    for key in ("login", "name", "url", "token"):
        value = decoded.get(key)
        if isinstance(value, str):
            user[key] = value
    return user


SECRET_COOKIE = "c2c-secret-session"  # noqa: S105 (a cookie name)
"""The cookie that keeps a browser signed in with ``C2C_SECRET`` across the app's pages."""
_REMEMBERED = "c2cwsgiutils.auth.secret_remembered"


def secret_signed_in(request: Request, secret: str) -> bool:
    """Tell whether the request carries ``C2C_SECRET``, or a session for it; remember it if it does.

    As upstream, a browser that gave the secret once (``?secret=`` or ``X-API-Key``) stays signed
    in across the app's pages, so that a page's own scripts (tilecloud-chain's admin page) call
    guarded views: the answer sets :data:`SECRET_COOKIE`, a signed token with an expiry
    (``C2C_OPS_SESSION_LIFETIME``), never the secret itself, on ``/``, ``HttpOnly`` and
    ``SameSite=Strict``, taken only from the app's own origin. The ops page's session counts too.
    """
    if is_authorized(request, secret):  # the secret given, or the ops page's session for it
        if provided_secret(request):
            remember_secret(request, secret)
        return True
    if provided_secret(request):
        return False  # a wrong secret given: no session makes up for it
    cookie = session_cookie(request, SECRET_COOKIE)
    if not cookie or not same_origin(request):
        return False
    return token_expiry(cookie, secret, session_lifetime(request)) is not None


def remember_secret(request: Request, secret: str) -> None:
    """Set :data:`SECRET_COOKIE` on the request's answer, whatever it is (once per request)."""
    if request.environ.get(_REMEMBERED):
        return
    request.environ[_REMEMBERED] = True
    lifetime = session_lifetime(request)
    value = make_token(secret, int(time.time() + lifetime))

    def remember(request: Request, response: Any) -> None:
        set_cookie(
            request, response, SECRET_COOKIE, value, max_age=int(lifetime), path=request.script_name + "/"
        )

    request.add_response_callback(remember)


def github_user(request: Request) -> UserDetails | None:
    """Return the GitHub user the request's session cookie vouches for, if GitHub sign-in is on.

    As the ops page's cookie, it counts only on requests from the app's own origin.
    """
    settings = AuthSettings.of(request)
    if settings.authentication_type is not AuthenticationType.GITHUB:
        return None
    cookie = session_cookie(request, settings.github_cookie)
    if not cookie or not same_origin(request):
        return None
    data = unsign(cookie, settings.github_secret, SESSION_LABEL, session_lifetime(request))
    return None if data is None else _user_of(data)


def is_auth_user(request: Request) -> tuple[bool, UserDetails]:
    """Tell whether the request is signed in, and as whom (upstream 6.1's call).

    With ``C2C_SECRET``: the request carries it, no details. With GitHub: a valid session cookie
    of any GitHub user (what they may do is :func:`check_access`'s), with their details.
    """
    settings = AuthSettings.of(request)
    kind = settings.authentication_type
    if kind is AuthenticationType.SECRET:
        return secret_signed_in(request, settings.secret), UserDetails()
    if kind is AuthenticationType.GITHUB:
        user = github_user(request)
        if user is not None:
            return True, user
    return False, UserDetails()


def check_access(request: Request, repo: str | None = None, access_type: str | None = None) -> bool:
    """Tell whether the signed-in user has ``access_type`` on ``repo`` (defaults: the settings).

    With ``C2C_SECRET``, being signed in is access.
    """
    config = AuthConfig()
    if repo is not None:
        config["github_repository"] = repo
    if access_type is not None:
        config["github_access_type"] = access_type
    return check_access_config(request, config)


def check_access_config(request: Request, auth_config: AuthConfig) -> bool:
    """Tell whether the signed-in user has the permission ``auth_config`` names.

    GitHub says (``permissions`` of the repository, asked with the user's token, kept
    :data:`PERMISSIONS_CACHE_SECONDS`); with ``C2C_SECRET``, being signed in is access. A repository
    or permission of the wrong form, or GitHub out of reach, is no access.
    """
    signed_in, user = is_auth_user(request)
    if not signed_in:
        return False
    settings = AuthSettings.of(request)
    if settings.authentication_type is not AuthenticationType.GITHUB:
        return True
    # A key that is missing takes the settings' value; one that is there but empty is no access.
    repository = auth_config.get("github_repository")
    if repository is None:
        repository = settings.github_repository
    access_type = auth_config.get("github_access_type")
    if access_type is None:
        access_type = settings.github_access_type
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        _WARN("check_access_config: %r is not <organization>/<repository>", repository, kind="repository")
        return False
    if access_type not in ACCESS_TYPES:
        _WARN("check_access_config: %r is not one of %s", access_type, ACCESS_TYPES, kind="access type")
        return False
    token = user.get("token")
    if not token:
        return False
    return repository_permissions(request, settings, token, repository).get(access_type) is True


def repository_permissions(
    request: Request, settings: AuthSettings, token: str, repository: str
) -> dict[str, bool]:
    """Return the user's permissions on ``repository`` (none when GitHub says nothing or is down)."""
    cache: dict[str, tuple[float, dict[str, bool]]] = request.registry.setdefault(_PERMISSIONS_KEY, {})
    key = hashlib.sha256(f"{token}\0{repository}".encode()).hexdigest()
    now = time.monotonic()
    cached = cache.get(key)
    if cached is not None and now < cached[0]:
        return cached[1]
    permissions, lifetime = _ask_permissions(settings, token, repository)
    if len(cache) >= _MAX_PERMISSIONS:
        cache.clear()
    cache[key] = (now + lifetime, permissions)
    return permissions


def _ask_permissions(settings: AuthSettings, token: str, repository: str) -> tuple[dict[str, bool], float]:
    """Ask GitHub; return the permissions and how long to keep them.

    A failure (out of reach, a revoked token, an error status) is no access, kept
    :data:`FAILURE_CACHE_SECONDS`: GitHub down must not cost every request a call that can
    block for the whole timeout.
    """
    try:
        with requests.get(
            f"{settings.github_repo_url}/{repository}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            timeout=GITHUB_TIMEOUT,
            stream=True,
        ) as response:
            if response.status_code in (403, 404):  # no access to a private repository: 404
                return {}, PERMISSIONS_CACHE_SECONDS
            if response.status_code != 200:
                _WARN(
                    "GitHub answered %s for a repository's permissions", response.status_code, kind="status"
                )
                return {}, FAILURE_CACHE_SECONDS
            try:
                body = read_json(response, GITHUB_MAX_ANSWER)
            except ValueError:
                body = None
    except requests.RequestException as error:
        _WARN("GitHub's repository permissions are out of reach: %s", type(error).__name__, kind="reach")
        return {}, FAILURE_CACHE_SECONDS
    found = body.get("permissions") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        return {}, PERMISSIONS_CACHE_SECONDS
    return {name: found.get(name) is True for name in ACCESS_TYPES}, PERMISSIONS_CACHE_SECONDS


def read_json(response: requests.Response, limit: int) -> Any:
    """Return the JSON of a streamed answer, reading at most ``limit`` bytes of it.

    Raises ValueError when the answer is larger (nothing more is read) or not JSON, and
    ``requests.RequestException`` when reading it fails.
    """
    body = bytearray()
    for chunk in response.iter_content(8192):
        body += chunk
        if len(body) > limit:
            raise ValueError(f"over {limit} bytes")
    return orjson.loads(body)


def set_cookie(
    request: Request,
    response: Any,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str,
    samesite: str = "strict",
    secure: bool | None = None,
) -> None:
    """Set one of the toolkit's cookies: ``HttpOnly``, ``Secure`` over HTTPS (or as ``secure`` says).

    ``SameSite=Strict`` unless told otherwise: a link or a redirect from another site must not
    carry a session to a view that acts on a GET.
    """
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=request.scheme == "https" if secure is None else secure,
        httponly=True,
        samesite=samesite,
    )


def is_operator(request: Request) -> bool:
    """Tell whether a GitHub user is signed in with the configured access on the configured repository.

    Such a user opens the protected ops views, as their secrets do. Never with ``C2C_SECRET`` or
    no GitHub sign-in configured (then, no cookie is even read).
    """
    if AuthSettings.of(request).authentication_type is not AuthenticationType.GITHUB:
        return False
    return check_access(request)


def github_sign_in_html(request: Request) -> str:
    """Return the ops page's GitHub card: who is signed in, or a "Sign in with GitHub" link.

    Empty unless the GitHub sign-in views are on (:mod:`c2cwsgiutils.auth_github`).
    """
    routes: dict[str, str] | None = request.registry.get(GITHUB_PATHS_KEY)
    if not routes:
        return ""
    # The routes' paths, behind the prefix the app is served under (SCRIPT_NAME) if any.
    paths = {name: request.script_name + path for name, path in routes.items()}
    user = github_user(request)
    if user is None:
        body = (
            f'<p><a class="button" id="github-sign-in" href="{escape(paths["login"], quote=True)}">'
            "Sign in with GitHub</a></p>"
        )
    else:
        login = user.get("login", "")
        shown = user.get("name") or login
        role = "operator" if is_operator(request) else "without the access that makes an operator"
        body = (
            f'<p>Signed in with GitHub as <strong class="github-user">{escape(shown)}</strong> '
            f"({escape(login)}), {role}.</p>"
            f'<form action="{escape(paths["logout"], quote=True)}" method="post">'
            '<button class="secondary">Sign out of GitHub</button></form>'
        )
    return f'<section class="card session" id="github"><h2>GitHub</h2>{body}</section>'
