"""The ops page at {C2C_BASE_PATH}/: HTML for a browser, the JSON index for API clients, sign-in."""

import re
from http.cookies import SimpleCookie

import orjson
import pytest
import webtest

from c2cwsgiutils import auth
from tests.apps import make_app

SECRET = "s3cret-value"  # noqa: S105 (made up)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HTML = {"Accept": BROWSER_ACCEPT}
# webtest talks plain HTTP; the Secure cookie is then sent back as a browser on HTTPS would.
HTTPS = {"wsgi.url_scheme": "https"}


pytestmark = pytest.mark.usefixtures("clean_ops_state")


@pytest.fixture
def app() -> webtest.TestApp:
    return make_app(settings={"c2c.log_view_secret": SECRET})


def sign_in(app: webtest.TestApp, secret: str = SECRET, status: int = 303) -> webtest.TestResponse:
    return app.post("/c2c/page/login", {"secret": secret}, extra_environ=HTTPS, status=status)


def session_cookie(response: webtest.TestResponse) -> SimpleCookie:
    (header,) = [value for name, value in response.headerlist if name == "Set-Cookie"]
    cookie = SimpleCookie()
    cookie.load(header)
    return cookie


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5"])
def test_api_clients_keep_the_json_index(app: webtest.TestApp, accept: str | None) -> None:
    response = app.get("/c2c/", headers={"Accept": accept} if accept else {})
    assert response.content_type == "application/json"
    expected = {
        "base_path": "/c2c",
        "views": {"logging_level": "/c2c/logging/level", "health": "/c2c/health"},
    }
    assert response.body == orjson.dumps(expected)


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html", "text/html, application/json;q=0.9"])
def test_a_browser_gets_the_page(app: webtest.TestApp, accept: str) -> None:
    response = app.get("/c2c/", headers={"Accept": accept})
    assert response.content_type == "text/html"
    assert "Accept" in response.headers["Vary"]
    assert "/c2c/logging/level" in response.text


def test_the_page_is_also_at_the_base_path_without_slash(app: webtest.TestApp) -> None:
    assert app.get("/c2c", headers=HTML).content_type == "text/html"


def test_no_page_when_the_base_path_is_empty() -> None:
    app = make_app(settings={"c2c.base_path": "/", "c2c.log_view_secret": SECRET})
    app.get("/", headers=HTML, status=404)
    app.post("/page/login", {"secret": SECRET}, status=404)
    app.get("/page/page.js", status=404)


def test_the_page_loads_nothing_from_elsewhere(app: webtest.TestApp) -> None:
    response = app.get("/c2c/", headers=HTML)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    urls = re.findall(r'(?:src|href|action)="([^"]*)"', response.text)
    assert urls
    assert all(url.startswith("/c2c/") for url in urls), urls
    assert "<style" not in response.text
    assert "<script>" not in response.text


@pytest.mark.parametrize(("name", "content_type"), [("page.css", "text/css"), ("page.js", "text/javascript")])
def test_the_page_files_are_served_from_the_package(
    app: webtest.TestApp, name: str, content_type: str
) -> None:
    response = app.get(f"/c2c/page/{name}")
    assert response.content_type == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"http://" not in response.body
    assert b"https://" not in response.body
    app.get(f"/c2c/page/{name}", headers={"If-None-Match": response.headers["ETag"]}, status=304)


def test_the_page_escapes_the_host_header(app: webtest.TestApp) -> None:
    response = app.get("/c2c/", headers={**HTML, "Host": '"><script>alert(1)</script>'})
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_the_page_offers_the_forms_of_the_views_that_are_on(app: webtest.TestApp) -> None:
    text = app.get("/c2c/", headers=HTML).text
    assert 'id="logging_level"' in text
    assert 'id="sql_profiler"' not in text  # no SQL_PROFILER_SECRET
    assert 'type="password" name="secret"' in text
    assert 'title="needs the secret">locked<' in text


def test_the_page_without_protected_views_asks_for_no_secret() -> None:
    text = make_app().get("/c2c/", headers=HTML).text
    assert 'name="secret"' not in text
    assert "/c2c/health" in text


def test_a_wrong_secret_is_refused_without_a_cookie(app: webtest.TestApp) -> None:
    response = sign_in(app, "wrong", status=403)
    assert response.content_type == "text/html"
    assert "Wrong secret." in response.text
    assert "wrong" not in response.text.replace("Wrong secret.", "")
    assert "Set-Cookie" not in response.headers


def test_the_right_secret_gives_a_session_cookie(app: webtest.TestApp) -> None:
    response = sign_in(app)
    assert response.location.endswith("/c2c/")
    morsel = session_cookie(response)[auth.COOKIE]
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/c2c"
    assert morsel["max-age"] == "3600"
    assert SECRET not in morsel.value
    assert SECRET not in response.headers["Set-Cookie"]


def test_the_cookie_lifetime_is_a_setting() -> None:
    app = make_app(settings={"c2c.log_view_secret": SECRET, "c2c.ops_session_lifetime": "10m"})
    assert session_cookie(sign_in(app))[auth.COOKIE]["max-age"] == "600"


def test_the_cookie_opens_the_protected_view(app: webtest.TestApp) -> None:
    sign_in(app)
    response = app.get("/c2c/logging/level?name=root", extra_environ=HTTPS)
    assert response.json["name"] == ""


def test_the_signed_in_page_shows_the_session_and_never_the_secret(app: webtest.TestApp) -> None:
    sign_in(app)
    text = app.get("/c2c/", headers=HTML, extra_environ=HTTPS).text
    assert "Signed in until" in text
    assert "1 of 1 protected views unlocked" in text
    assert 'type="password"' not in text
    assert SECRET not in text


def test_sign_out_drops_the_cookie(app: webtest.TestApp) -> None:
    sign_in(app)
    response = app.post("/c2c/page/logout", extra_environ=HTTPS, status=303)
    morsel = session_cookie(response)[auth.COOKIE]
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert morsel["path"] == "/c2c"
    app.get("/c2c/logging/level?name=root", extra_environ=HTTPS, status=403)


def test_sign_in_from_another_origin_is_refused(app: webtest.TestApp) -> None:
    response = app.post(
        "/c2c/page/login",
        {"secret": SECRET},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        extra_environ=HTTPS,
        status=403,
    )
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://sibling.localhost"},
    ],
)
def test_the_cookie_is_not_accepted_from_another_origin(
    app: webtest.TestApp, headers: dict[str, str]
) -> None:
    sign_in(app)
    app.get("/c2c/logging/level?name=root", headers=headers, extra_environ=HTTPS, status=403)


def test_the_cookie_is_accepted_from_the_page_itself(app: webtest.TestApp) -> None:
    sign_in(app)
    app.post(
        "/c2c/logging/level",
        {"name": "c2cwsgiutils_test_page", "level": "INFO"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "https://localhost:80"},
        extra_environ=HTTPS,
    )


def test_page_errors_carry_no_stack_trace(app: webtest.TestApp) -> None:
    response = app.post(
        "/c2c/page/login", "\xff=\xfe", content_type="text/plain", extra_environ=HTTPS, status=403
    )
    assert "Traceback" not in response.text
