"""GitHub sign-in for the ops views (OAuth2 web flow), on when its settings are (:class:`auth.AuthSettings`).

Three views under ``C2C_BASE_PATH`` (upstream 6.1's routes and paths):

- ``c2c_github_login`` (``/github-login?came_from=...``) sends the browser to GitHub's authorization
  page with a random ``state``, kept in a signed cookie that lives ten minutes and is sent only to
  the callback;
- ``c2c_github_callback`` (``/github-callback?code=...&state=...``) refuses a state that does not
  match that cookie (a 403 JSON: a forged callback, CSRF), exchanges the code for a token at the
  token URL, reads the user at the user URL, and sets the session cookie
  (:func:`c2cwsgiutils.auth.github_session_value`);
- ``c2c_github_logout`` drops the session cookie.

Every URL the server calls comes from the settings, never from the request. The page to return to
(``came_from``) must be of the app's own origin. The callback answers with a small page that moves
on to it, so that the browser's next request starts from the app's origin, not from GitHub's, and
the session (refused from other origins) counts on it.
"""

import logging
import secrets
import time
import urllib.parse
from html import escape

import requests
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import auth, request_tracking
from c2cwsgiutils.auth import AuthenticationType, AuthSettings, UserDetails
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import OpsViewsSettings
from c2cwsgiutils.responses import json_error

LOG = logging.getLogger(__name__)
LOGIN = "/github-login"
CALLBACK = "/github-callback"
LOGOUT = "/github-logout"
STATE_COOKIE = "c2c-auth-github-state"
STATE_LABEL = b"c2cwsgiutils github state v1"
STATE_LIFETIME = 600
"""Seconds between the login view and GitHub's return to the callback."""
MAX_CAME_FROM = 2048
"""The longest page to return to after signing in, in characters."""
MAX_PARAM = 256
"""The longest ``code``, ``state`` or ``error`` GitHub sends back."""
MAX_ANSWER = auth.GITHUB_MAX_ANSWER
"""The most read of GitHub's token and user answers."""
_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# What a percent-encoded URL keeps as is in a meta refresh: no quote, no space.
_URL_SAFE = "/?&=%#:@!$()*+,;-._~"


class SignInError(Exception):
    """A sign-in step failed: answered with ``status`` and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(request: Request, error: SignInError) -> Response:
    response = json_error(error.status, str(error), request_tracking.request_id(request))
    response.headers["Cache-Control"] = "no-store"
    return response


def _param(request: Request, name: str, required: bool = True, limit: int = MAX_PARAM) -> str | None:
    """Return the query parameter ``name``: one value, printable ASCII, at most ``limit`` long."""
    values = request.GET.getall(name)
    if not values:
        if required:
            raise SignInError(400, f"{name}: missing")
        return None
    value: str = values[0]
    if len(values) > 1 or len(value) > limit or not value.isascii() or not value.isprintable():
        raise SignInError(400, f"{name}: expected one printable ASCII value of at most {limit} characters")
    return value


def _origin(url: str) -> tuple[str, str | None, int | None] | None:
    """Return the scheme, host and port of an absolute URL (the default port made explicit)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, port or {"http": 80, "https": 443}.get(scheme)


def same_origin_target(request: Request, raw: str | None) -> str:
    """Return ``raw`` as a path of the app's own origin, to return to after signing in.

    An absolute URL must be of the request's own scheme and host (tilecloud-chain sends one); a
    path must start with one ``/``. Anything else (another host, ``//host``, a backslash or a
    control character that a browser would read as one) is a 400.
    """
    # Behind a prefix (SCRIPT_NAME, as PasteDeploy's prefix filter sets), the page is under it.
    default = f"{request.script_name}{OpsViewsSettings.of(request).base_path}/"
    if raw is None or raw == "":
        return default
    if len(raw) > MAX_CAME_FROM or "\\" in raw or not raw.isprintable():
        raise SignInError(
            400, f"came_from: expected a URL of this site of at most {MAX_CAME_FROM} characters"
        )
    parts = urllib.parse.urlsplit(raw)
    if (parts.scheme or parts.netloc) and _origin(raw) != _origin(request.host_url):
        raise SignInError(400, "came_from: expected a URL of this site")
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        raise SignInError(400, "came_from: expected a URL of this site")
    return urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def _drop_state(request: Request, response: Response) -> None:
    auth.set_cookie(
        request, response, STATE_COOKIE, "", max_age=0, path=request.route_path("c2c_github_callback")
    )


def _redirect_uri(request: Request, settings: AuthSettings) -> str:
    callback: str = request.route_url("c2c_github_callback")
    if not settings.github_proxy_url:
        return callback
    separator = "&" if "?" in settings.github_proxy_url else "?"
    return settings.github_proxy_url + separator + urllib.parse.urlencode({"came_from": callback})


def login_view(request: Request) -> Response:
    """Send the browser to GitHub's authorization page, with a state kept in a signed cookie."""
    settings = AuthSettings.of(request)
    try:
        target = same_origin_target(
            request, _param(request, "came_from", required=False, limit=MAX_CAME_FROM)
        )
    except SignInError as error:
        return _error(request, error)
    state = secrets.token_urlsafe(32)
    query = urllib.parse.urlencode(
        {
            "client_id": settings.github_client_id,
            "redirect_uri": _redirect_uri(request, settings),
            "scope": settings.github_scope,
            "state": state,
        }
    )
    separator = "&" if "?" in settings.github_auth_url else "?"
    response = Response(status=302)
    response.location = settings.github_auth_url + separator + query
    response.headers["Cache-Control"] = "no-store"
    cookie = auth.sign(
        settings.github_secret,
        STATE_LABEL,
        int(time.time()) + STATE_LIFETIME,
        f"{state}~{auth.urlsafe_text(target.encode('utf-8'))}",
    )
    callback = request.route_path("c2c_github_callback")
    # Lax, this one only: GitHub's redirect to the callback is a navigation from another site. The
    # callback answers a page that moves on, so the Strict session cookie is first sent same-site.
    auth.set_cookie(
        request, response, STATE_COOKIE, cookie, max_age=STATE_LIFETIME, path=callback, samesite="lax"
    )
    return response


def _checked_state(request: Request, settings: AuthSettings) -> str:
    """Return the page to return to, once the callback's state matches the login's cookie."""
    state = _param(request, "state", required=False)
    if state is None:
        raise SignInError(403, "state: missing; start again from the sign-in link")
    cookie = auth.session_cookie(request, STATE_COOKIE)
    data = None
    if cookie:
        data = auth.unsign(cookie, settings.github_secret, STATE_LABEL, STATE_LIFETIME)
    expected, _, target = (data or "").partition("~")
    if not expected or not auth.secrets_equal(state, expected):
        raise SignInError(
            403, "state: does not match this browser's sign-in; start again from the sign-in link"
        )
    try:
        return auth.urlsafe_bytes(target).decode("utf-8")
    except ValueError:
        raise SignInError(403, "state: unreadable; start again from the sign-in link") from None


def _json_answer(response: requests.Response, what: str) -> dict[str, object]:
    """Read GitHub's answer (a streamed one), at most :data:`MAX_ANSWER` bytes of it."""
    try:
        body = auth.read_json(response, MAX_ANSWER)
    except ValueError:
        body = None
    except requests.RequestException as error:
        raise SignInError(502, f"GitHub's {what} answer could not be read ({type(error).__name__})") from None
    if not isinstance(body, dict):
        raise SignInError(502, f"GitHub's {what} answer (status {response.status_code}) is not a JSON object")
    return body


def _short(value: object) -> str:
    """Return a value of GitHub's answer fit for a message: a short word or nothing."""
    text = value if isinstance(value, str) else ""
    return text[:64] if text.isascii() and text.isprintable() else ""


def _exchange(request: Request, settings: AuthSettings, code: str) -> str:
    """Exchange the sign-in's code for the user's token, at the configured token URL."""
    try:
        response = requests.post(
            settings.github_token_url,
            data={
                "client_id": settings.github_client_id,
                "client_secret": settings.github_client_secret,
                "code": code,
                "redirect_uri": _redirect_uri(request, settings),
            },
            headers={"Accept": "application/json"},
            timeout=auth.GITHUB_TIMEOUT,
            stream=True,
        )
    except requests.RequestException as error:
        raise SignInError(502, f"GitHub's token URL is out of reach ({type(error).__name__})") from None
    body = _json_answer(response, "token")
    token = body.get("access_token")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        problem = _short(body.get("error")) or f"status {response.status_code}"
        raise SignInError(403, f"GitHub gave no token: {problem}")
    return token


def _user(settings: AuthSettings, token: str) -> UserDetails:
    """Read the signed-in user at the configured user URL."""
    try:
        response = requests.get(
            settings.github_user_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            timeout=auth.GITHUB_TIMEOUT,
            stream=True,
        )
    except requests.RequestException as error:
        raise SignInError(502, f"GitHub's user URL is out of reach ({type(error).__name__})") from None
    body = _json_answer(response, "user")
    login = body.get("login")
    if response.status_code != 200 or not isinstance(login, str) or not login:
        raise SignInError(502, f"GitHub's user answer (status {response.status_code}) has no login")
    name, url = body.get("name"), body.get("html_url")
    return UserDetails(
        login=login[:100],
        name=name[:200] if isinstance(name, str) and name else login[:100],
        url=url[:500] if isinstance(url, str) else "",
        token=token,
    )


def _moving_on(target: str) -> Response:
    """Answer a page that moves on to ``target`` (same origin), so the next request is same-origin."""
    url = escape(urllib.parse.quote(target, safe=_URL_SAFE), quote=True)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={url}"><title>Signed in</title></head>'
        f'<body><p>Signed in. <a href="{url}">Continue</a>.</p></body></html>'
    )
    response = Response(body=body.encode("utf-8"), content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        }
    )
    return response


def callback_view(request: Request) -> Response:
    """Check the state, turn the code into a token and a user, and sign the browser in."""
    settings = AuthSettings.of(request)
    try:
        target = _checked_state(request, settings)
        error = _param(request, "error", required=False)
        if error is not None:
            raise SignInError(403, f"GitHub refused the sign-in: {_short(error)}")
        token = _exchange(request, settings, str(_param(request, "code")))
        user = _user(settings, token)
    except SignInError as failure:
        LOG.warning("GitHub sign-in refused: %s", failure)
        refused = _error(request, failure)
        _drop_state(request, refused)  # one try per state: a new sign-in starts from the link
        return refused
    lifetime = auth.session_lifetime(request)
    response = _moving_on(target)
    value = auth.github_session_value(settings.github_secret, user, int(time.time() + lifetime))
    auth.set_cookie(request, response, settings.github_cookie, value, max_age=int(lifetime), path="/")
    _drop_state(request, response)
    LOG.info("GitHub sign-in of %s", user.get("login"))
    return response


def logout_view(request: Request) -> Response:
    """Drop the GitHub session cookie and go back to ``came_from`` (same origin) or the ops page."""
    try:
        target = same_origin_target(
            request, _param(request, "came_from", required=False, limit=MAX_CAME_FROM)
        )
    except SignInError as error:
        return _error(request, error)
    response = Response(status=303)
    response.location = target
    response.headers["Cache-Control"] = "no-store"
    auth.set_cookie(request, response, AuthSettings.of(request).github_cookie, "", max_age=0, path="/")
    return response


def includeme(config: Configurator) -> None:
    """Add the GitHub sign-in views when GitHub sign-in is configured (and no ``C2C_SECRET``)."""
    if not first_time(config, "auth_github"):
        return
    settings = AuthSettings.of(config)
    missing = settings.github_missing()
    if settings.github_client_id and settings.secret:
        LOG.warning("C2C_AUTH_GITHUB_CLIENT_ID is set but C2C_SECRET wins: GitHub sign-in is off")
    elif settings.github_client_id and missing:
        LOG.warning(
            "C2C_AUTH_GITHUB_CLIENT_ID is set but GitHub sign-in is off: missing %s", ", ".join(missing)
        )
    if settings.authentication_type is not AuthenticationType.GITHUB:
        return
    prefix = OpsViewsSettings.of(config).base_path
    paths = {}
    for name, path, view, methods in (
        ("login", LOGIN, login_view, ("GET", "HEAD")),
        ("callback", CALLBACK, callback_view, ("GET",)),
        ("logout", LOGOUT, logout_view, ("GET", "POST")),
    ):
        config.add_route(f"c2c_github_{name}", prefix + path, request_method=methods)
        config.add_view(view, route_name=f"c2c_github_{name}", http_cache=0)
        paths[name] = prefix + path
    config.registry[auth.GITHUB_PATHS_KEY] = paths
