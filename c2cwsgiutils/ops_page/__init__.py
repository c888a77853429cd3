"""The ops page: ``{C2C_BASE_PATH}/`` as an HTML page for a browser (API clients keep the JSON index).

It lists the ops views that are on, with links and small forms for the usual tasks (a log level,
the SQL profiler, the health check up to a level, versions, stats). The forms call the ops views
themselves (with ``fetch`` from the page's script, or by plain navigation without it), so the
page adds no second way to change anything.

The secret is entered once, in a POST form; the answer is a session cookie made by
:mod:`c2cwsgiutils.auth` (not the secret: tokens signed with a key derived from it, with an
expiry), ``Secure; HttpOnly; SameSite=Strict`` and scoped to ``C2C_BASE_PATH``. The page never
puts the secret in a URL. Its CSS and script are served from the package: nothing comes from
another origin, and the Content-Security-Policy allows nothing else.

An app adds its own links and forms through :mod:`c2cwsgiutils.index` (the original's door): its
fragments are the app's trusted HTML, shown in one card under the same policy.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from html import escape
from importlib import resources

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import auth, index
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import OpsViewsSettings, add_cors_views, ops_views, view_secrets
from c2cwsgiutils.responses import json_response

LOG = logging.getLogger(__name__)
LOGIN = "/page/login"
LOGOUT = "/page/logout"
ASSETS = {"page.css": "text/css", "page.js": "text/javascript"}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The views the page has a form for, in the page's order; the others are in the table of all views.
_FORMS = ("health_check", "versions", "stats", "logging_level", "sql_profiler")


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _result() -> str:
    return '<pre class="result" aria-live="polite" hidden></pre>'


def _lock(name: str, unlocked: dict[str, bool]) -> str:
    if name not in unlocked:
        return ""
    if unlocked[name]:
        return ' <span class="badge open">unlocked</span>'
    return ' <span class="badge locked" title="needs the secret">locked</span>'


def _section(title: str, name: str, path: str, unlocked: dict[str, bool], body: str) -> str:
    return (
        f'<section class="card" id="{_attr(name)}"><h2>{escape(title)}{_lock(name, unlocked)}</h2>'
        f'<p class="path"><a href="{_attr(path)}">{escape(path)}</a></p>{body}</section>'
    )


def _health_check(path: str, unlocked: dict[str, bool]) -> str:
    body = (
        f'<form action="{_attr(path)}" method="get" data-fetch>'
        '<label>Up to level <input type="number" name="max_level" min="1" max="100" value="1" required>'
        "</label><button>Run the checks</button></form>" + _result()
    )
    return _section("Health check", "health_check", path, unlocked, body)


def _show(title: str, name: str, path: str, unlocked: dict[str, bool], label: str) -> str:
    body = f'<form action="{_attr(path)}" method="get" data-fetch><button>{escape(label)}</button></form>'
    return _section(title, name, path, unlocked, body + _result())


_LOGGER_INPUT = (
    '<label>Logger <input name="name" value="root" required autocomplete="off" spellcheck="false"></label>'
)


def _logging_level(path: str, unlocked: dict[str, bool]) -> str:
    options = "".join(f"<option>{level}</option>" for level in LEVELS)
    body = (
        f'<form action="{_attr(path)}" method="get" data-fetch>'
        f"{_LOGGER_INPUT}"
        "<button>Read the level</button></form>"
        f'<form action="{_attr(path)}" method="post" data-fetch>'
        f"{_LOGGER_INPUT}"
        f'<label>Level <select name="level">{options}</select></label>'
        '<label>For (optional) <input name="duration" placeholder="e.g. 10m" autocomplete="off">'
        "</label><button>Set the level</button></form>"
        f'<form action="{_attr(path)}" method="get" data-fetch><button class="secondary">'
        "List the levels set at run time</button></form>" + _result()
    )
    return _section("Log levels", "logging_level", path, unlocked, body)


def _sql_profiler(path: str, unlocked: dict[str, bool]) -> str:
    body = (
        f'<form action="{_attr(path)}" method="post" data-fetch class="buttons">'
        '<button name="enable" value="1">Switch on</button>'
        '<button name="enable" value="0">Switch off</button>'
        '<button class="secondary">Is it on?</button></form>' + _result()
    )
    return _section("SQL profiler", "sql_profiler", path, unlocked, body)


def _session(request: Request, prefix: str, unlocked: dict[str, bool], expiries: list[int]) -> str:
    if not unlocked:
        return ""
    opened = sum(unlocked.values())
    parts = ['<section class="card session" id="session"><h2>Secret</h2>']
    if opened:
        until = time.strftime("%H:%M UTC", time.gmtime(min(expiries)))
        parts.append(
            f"<p>Signed in until {escape(until)}: {opened} of {len(unlocked)} protected views unlocked.</p>"
            f'<form action="{_attr(prefix + LOGOUT)}" method="post">'
            '<button class="secondary">Sign out</button></form>'
        )
    if opened < len(unlocked):
        parts.append(
            f'<form action="{_attr(prefix + LOGIN)}" method="post" class="login">'
            '<label>Secret <input type="password" name="secret" required autocomplete="current-password">'
            "</label><button>Sign in</button></form>"
            '<p class="hint">Kept in a secure, HTTP-only cookie for this path '
            "(needs HTTPS, or localhost).</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _additional(request: Request, unlocked: dict[str, bool]) -> str:
    """Return the card of the app's own fragments (c2cwsgiutils.index), or nothing when it has none.

    The fragments are the app's trusted HTML, possibly unbalanced (the original's users open a
    ``<div>`` in one fragment and close it in another): a ``<section>`` holds them, and the HTML
    parser closes what they leave open at its end and ignores a ``</div>`` with no ``<div>`` open.
    Signed in is: a protected view unlocked on this page, or access as ``auth.check_access`` says
    (``C2C_SECRET``, or a GitHub sign-in with the configured permission), as in the original.
    """
    signed_in = any(unlocked.values()) or auth.check_access(request)
    fragments = index.render_additional(signed_in)
    if not fragments:
        return ""
    return f'<section class="card wide app" id="app" aria-label="The application">{fragments}</section>'


def _all_views(views: dict[str, str], unlocked: dict[str, bool]) -> str:
    rows = "".join(
        f'<tr><td>{escape(name)}</td><td><a href="{_attr(path)}">{escape(path)}</a></td>'
        f"<td>{_lock(name, unlocked) or 'open'}</td></tr>"
        for name, path in sorted(views.items(), key=lambda item: item[1])
    )
    return (
        '<section class="card wide" id="views"><h2>Every ops view</h2><div class="table">'
        f"<table><thead><tr><th>Name</th><th>Path</th><th>Access</th></tr></thead><tbody>{rows}</tbody>"
        "</table></div></section>"
    )


def page(request: Request, status: int = 200, message: str = "") -> Response:
    """Render the ops page; ``message`` is one of the page's own fixed texts, never the client's input."""
    prefix = OpsViewsSettings.of(request).base_path
    views = ops_views(request)
    unlocked: dict[str, bool] = {}
    expiries: list[int] = []
    for name, secret in view_secrets(request).items():
        expiry = auth.cookie_expiry(request, secret)
        unlocked[name] = expiry is not None
        if expiry is not None:
            expiries.append(expiry)
    builders = {
        "health_check": lambda path: _health_check(path, unlocked),
        "versions": lambda path: _show("Versions", "versions", path, unlocked, "Show the versions"),
        "stats": lambda path: _show("Stats", "stats", path, unlocked, "Show the stats"),
        "logging_level": lambda path: _logging_level(path, unlocked),
        "sql_profiler": lambda path: _sql_profiler(path, unlocked),
    }
    cards = [builders[name](views[name]) for name in _FORMS if name in views]
    notice = f'<p class="notice" role="alert">{escape(message)}</p>' if message else ""
    host = request.host
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Ops · {escape(host)}</title>"
        f'<link rel="stylesheet" href="{_attr(prefix)}/page/page.css">'
        f'<script src="{_attr(prefix)}/page/page.js" defer></script></head><body>'
        f'<header><h1>Ops</h1><p class="host">{escape(host + prefix)}</p></header><main>'
        + notice
        + auth.github_sign_in_html(request)
        + _session(request, prefix, unlocked, expiries)
        + "".join(cards)
        + _additional(request, unlocked)
        + _all_views(views, unlocked)
        + "</main></body></html>"
    )
    response = Response(body=body.encode("utf-8"), status=status, content_type="text/html", charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    return response


def _set_session_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    path = OpsViewsSettings.of(request).base_path
    auth.set_cookie(request, response, auth.COOKIE, value, max_age=max_age, path=path, secure=True)


def _back_to_page(request: Request) -> Response:
    response = Response(status=303)
    response.location = OpsViewsSettings.of(request).base_path + "/"
    response.headers["Cache-Control"] = "no-store"
    return response


def login_view(request: Request) -> Response:
    """Check the secret posted by the page's form and answer with a session cookie for it."""
    if not auth.same_origin(request):
        return page(request, 403, "Sign in from this page itself.")
    secret = request.POST.get("secret", "")
    secrets = set(view_secrets(request).values())
    # Upstream's one secret signs in too: the app's additions for operators, its own guarded pages.
    c2c_secret = auth.AuthSettings.of(request).secret
    if c2c_secret:
        secrets.add(c2c_secret)
    if not secret or not any(auth.secrets_equal(secret, known) for known in secrets):
        LOG.warning("ops page: a wrong secret was entered from %s", request.client_addr)
        return page(request, 403, "Wrong secret.")
    if c2c_secret and auth.secrets_equal(secret, c2c_secret):
        auth.remember_secret(request, secret)
    lifetime = OpsViewsSettings.of(request).session_lifetime
    value = auth.merge_tokens(
        auth.split_tokens(auth.session_cookie(request)), secret, secrets, int(time.time() + lifetime)
    )
    response = _back_to_page(request)
    _set_session_cookie(request, response, value, int(lifetime))
    return response


def logout_view(request: Request) -> Response:
    """Forget the session: the browser drops the cookie."""
    if not auth.same_origin(request):
        return page(request, 403, "Sign out from this page itself.")
    response = _back_to_page(request)
    _set_session_cookie(request, response, "", 0)
    return response


def _asset_view(name: str) -> Callable[[Request], Response]:
    content = resources.files(__package__).joinpath(name).read_bytes()
    etag = hashlib.sha256(content).hexdigest()[:32]

    def asset_view(request: Request) -> Response:
        """Serve one of the page's own files."""
        response = Response(
            body=content, content_type=ASSETS[name], charset="utf-8", conditional_response=True
        )
        response.etag = etag
        response.cache_control = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return asset_view


def prefers_html(request: Request) -> bool:
    """Tell whether the client asks for HTML before JSON (a browser); no Accept header means JSON."""
    if "Accept" not in request.headers:
        return False
    offers = request.accept.acceptable_offers(["application/json", "text/html"])
    return bool(offers) and offers[0][0] == "text/html"


def _index(request: Request) -> Response:
    if prefers_html(request):
        response = page(request)
    else:
        prefix = OpsViewsSettings.of(request).base_path
        response = json_response({"base_path": prefix, "views": ops_views(request)})
    # Caches must keep the page and the JSON apart.
    response.vary = ("Accept",)
    return response


def includeme(config: Configurator) -> None:
    """Add the index (JSON, or the page for a browser), the page's sign-in, sign-out and files."""
    if not first_time(config, "ops_page"):
        return
    prefix = OpsViewsSettings.of(config).base_path
    if not prefix:
        # With the ops views at the root, an index (or a page) there would take the app's own home page.
        return
    config.add_route("c2c_index", prefix + "{slash:/?}")
    add_cors_views(config, "c2c_index", _index, {"request_method": ("GET", "HEAD")})
    config.add_route("c2c_page_login", prefix + LOGIN)
    add_cors_views(config, "c2c_page_login", login_view, {"request_method": "POST"})
    config.add_route("c2c_page_logout", prefix + LOGOUT)
    add_cors_views(config, "c2c_page_logout", logout_view, {"request_method": "POST"})
    for name in ASSETS:
        route_name = f"c2c_page_{name.replace('.', '_')}"
        config.add_route(route_name, f"{prefix}/page/{name}")
        add_cors_views(config, route_name, _asset_view(name), {"request_method": ("GET", "HEAD")})
