"""The ops page's session tokens (auth.py): expiry, tampering, and binding to one secret."""

import time

import pytest
import webtest

from c2cwsgiutils import auth
from tests.apps import make_app

LOG_SECRET = "log-secret"  # noqa: S105 (made up)
PROFILER_SECRET = "profiler-secret"  # noqa: S105 (made up)
HTTPS = {"wsgi.url_scheme": "https"}


pytestmark = pytest.mark.usefixtures("clean_ops_state")


@pytest.fixture
def app() -> webtest.TestApp:
    """Two protected views with two different secrets."""
    return make_app(settings={"c2c.log_view_secret": LOG_SECRET, "c2c.sql_profiler_secret": PROFILER_SECRET})


def get_level(app: webtest.TestApp, cookie: str, status: int) -> None:
    app.set_cookie(auth.COOKIE, cookie)
    app.get("/c2c/logging/level?name=root", extra_environ=HTTPS, status=status)


def test_a_fresh_token_holds() -> None:
    expiry = int(time.time()) + 60
    assert auth.token_expiry(auth.make_token(LOG_SECRET, expiry), LOG_SECRET) == expiry


def test_the_token_is_not_the_secret() -> None:
    token = auth.make_token(LOG_SECRET, int(time.time()) + 60)
    assert LOG_SECRET not in token
    assert LOG_SECRET.encode().hex() not in token


def test_an_expired_token_is_refused() -> None:
    assert auth.token_expiry(auth.make_token(LOG_SECRET, int(time.time()) - 1), LOG_SECRET) is None


def test_a_token_longer_than_the_lifetime_is_refused() -> None:
    token = auth.make_token(LOG_SECRET, int(time.time()) + 7200)
    assert auth.token_expiry(token, LOG_SECRET, max_lifetime=3600) is None
    assert auth.token_expiry(token, LOG_SECRET, max_lifetime=10800) is not None


@pytest.mark.parametrize("expiry", ["²", "٣" * 10, "", "-1", "1e12", " 1"])
def test_a_token_whose_expiry_is_not_ascii_digits_is_refused(expiry: str) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: the cookie is the client's."""
    assert auth.token_expiry(f"{expiry}.mac", LOG_SECRET) is None


def test_a_token_with_a_moved_expiry_is_refused() -> None:
    expiry = int(time.time()) + 60
    mac = auth.make_token(LOG_SECRET, expiry).partition(".")[2]
    assert auth.token_expiry(f"{expiry + 3600}.{mac}", LOG_SECRET) is None


@pytest.mark.parametrize("position", [0, 10, -1])
def test_a_token_with_a_changed_mac_is_refused(position: int) -> None:
    token = auth.make_token(LOG_SECRET, int(time.time()) + 60)
    expiry, _, mac = token.partition(".")
    changed = mac[:position] + ("A" if mac[position] != "A" else "B") + mac[position + 1 :][: len(mac)]
    changed = changed[: len(mac)]
    assert auth.token_expiry(f"{expiry}.{changed}", LOG_SECRET) is None


def test_a_token_made_with_another_secret_is_refused() -> None:
    token = auth.make_token(PROFILER_SECRET, int(time.time()) + 60)
    assert auth.token_expiry(token, LOG_SECRET) is None


@pytest.mark.parametrize(
    "cookie", ["", "garbage", "1.2.3", "99999999999999999999.abc", "-5.abc", "~~~", "é.é", LOG_SECRET]
)
def test_a_malformed_cookie_is_a_403(app: webtest.TestApp, cookie: str) -> None:
    get_level(app, cookie, 403)


def test_a_valid_cookie_opens_the_view(app: webtest.TestApp) -> None:
    get_level(app, auth.make_token(LOG_SECRET, int(time.time()) + 60), 200)


def test_an_expired_cookie_is_a_403(app: webtest.TestApp) -> None:
    get_level(app, auth.make_token(LOG_SECRET, int(time.time()) - 1), 403)


def test_a_cookie_for_one_secret_does_not_open_a_view_with_another(app: webtest.TestApp) -> None:
    app.post("/c2c/page/login", {"secret": PROFILER_SECRET}, extra_environ=HTTPS, status=303)
    app.get("/c2c/sql_profiler", extra_environ=HTTPS, status=200)
    app.get("/c2c/logging/level?name=root", extra_environ=HTTPS, status=403)


def test_signing_in_with_each_secret_opens_both(app: webtest.TestApp) -> None:
    app.post("/c2c/page/login", {"secret": PROFILER_SECRET}, extra_environ=HTTPS, status=303)
    app.post("/c2c/page/login", {"secret": LOG_SECRET}, extra_environ=HTTPS, status=303)
    app.get("/c2c/sql_profiler", extra_environ=HTTPS, status=200)
    app.get("/c2c/logging/level?name=root", extra_environ=HTTPS, status=200)
    assert len(auth.split_tokens(app.cookies[auth.COOKIE])) == 2


def test_signing_in_again_replaces_the_token_of_that_secret(app: webtest.TestApp) -> None:
    app.post("/c2c/page/login", {"secret": LOG_SECRET}, extra_environ=HTTPS, status=303)
    app.post("/c2c/page/login", {"secret": LOG_SECRET}, extra_environ=HTTPS, status=303)
    assert len(auth.split_tokens(app.cookies[auth.COOKIE])) == 1


def test_a_wrong_secret_in_the_header_wins_over_a_valid_cookie(app: webtest.TestApp) -> None:
    app.set_cookie(auth.COOKIE, auth.make_token(LOG_SECRET, int(time.time()) + 60))
    app.get("/c2c/logging/level?name=root", headers={"X-API-Key": "wrong"}, extra_environ=HTTPS, status=403)
