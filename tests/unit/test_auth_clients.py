"""Upstream 6.1's sign-in names (issue 23): auth_type, is_auth_user, check_access, AuthConfig.

As tilecloud-chain (security.py, views/admin.py, server.py) and c2cgeoportal (views/memory.py,
theme.py) call them, on in-process apps. GitHub is never called here: the GitHub session is made
with the app's own signing function, and GitHub's API, where it is needed, is a closed port (out of
reach is no access). tests/test_auth_github_browser.py drives the whole sign-in against a stand-in.
"""

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests
import webtest
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request

from c2cwsgiutils import auth, auth_github
from c2cwsgiutils.acceptance.server import free_port
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from c2cwsgiutils.config_utils import SettingError

SECRET = "the-operators-secret"  # noqa: S105 (made up)
SIGNING = "a-session-signing-secret-of-the-test"
GITHUB = {
    "c2c.auth.github.client_id": "client-id",
    "c2c.auth.github.client_secret": "client-secret",
    "c2c.auth.github.repository": "camptocamp/allowed",
    "c2c.auth.github.auth.secret": SIGNING,
}
USER = auth.UserDetails(login="octo", name="Octo Cat", url="https://gh.test/octo", token="gho_x")  # noqa: S106


@pytest.fixture(autouse=True)
def no_auth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment wins over the ini: none of the settings comes from it here."""
    for _, declaration in auth.AuthSettings.declarations():
        monkeypatch.delenv(declaration.env, raising=False)


def request_with(settings: dict[str, Any], headers: dict[str, str] | None = None, query: str = "") -> Request:
    request = Request.blank("/" + query, headers=headers or {})
    request.registry = Configurator(settings=settings).registry
    return request


def github_settings(**overrides: str) -> dict[str, str]:
    # GitHub's API on a closed port: a permission check finds it out of reach.
    return {**GITHUB, "c2c.auth.github.repo_url": f"http://127.0.0.1:{free_port()}/repos", **overrides}


def with_session(settings: dict[str, str], value: str, headers: dict[str, str] | None = None) -> Request:
    return request_with(settings, {"Cookie": f"c2c-auth-jwt={value}", **(headers or {})})


def session(secret: str = SIGNING, expiry_in: float = 600) -> str:
    return auth.github_session_value(secret, USER, int(time.time() + expiry_in))


def test_authentication_types_are_upstreams() -> None:
    assert [(member.name, member.value) for member in auth.AuthenticationType] == [
        ("NONE", 0),
        ("SECRET", 1),
        ("GITHUB", 2),
    ]


def test_auth_type_is_none_without_settings() -> None:
    assert auth.auth_type({}) is auth.AuthenticationType.NONE
    assert auth.auth_type(None) is auth.AuthenticationType.NONE


def test_auth_type_is_secret_with_c2c_secret() -> None:
    assert auth.auth_type({"c2c.secret": SECRET}) is auth.AuthenticationType.SECRET


def test_auth_type_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_SECRET", SECRET)
    assert auth.auth_type({}) is auth.AuthenticationType.SECRET


def test_auth_type_is_github_with_its_four_settings() -> None:
    assert auth.auth_type(GITHUB) is auth.AuthenticationType.GITHUB


def test_c2c_secret_wins_over_github() -> None:
    assert auth.auth_type({**GITHUB, "c2c.secret": SECRET}) is auth.AuthenticationType.SECRET


@pytest.mark.parametrize("left_out", sorted(GITHUB))
def test_github_needs_each_of_its_settings(left_out: str) -> None:
    settings = {key: value for key, value in GITHUB.items() if key != left_out}
    assert auth.auth_type(settings) is auth.AuthenticationType.NONE


def test_github_needs_a_signing_secret_of_16_characters() -> None:
    key = "c2c.auth.github.auth.secret"
    assert auth.auth_type({**GITHUB, key: "x" * 15}) is auth.AuthenticationType.NONE
    assert auth.auth_type({**GITHUB, key: "x" * 16}) is auth.AuthenticationType.GITHUB


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("c2c.auth.github.repository", "camptocamp"),
        ("c2c.auth.github.repository", "camptocamp/.."),
        ("c2c.auth.github.repository", "camptocamp/x?y"),
        ("c2c.auth.github.access_type", "write"),
        ("c2c.auth.github.token_url", "file:///etc/passwd"),
        ("c2c.auth.github.user_url", "https://api.github.com/user\nX: y"),
        ("c2c.auth.github.auth.cookie", "a cookie"),
    ],
)
def test_a_setting_of_the_wrong_form_is_refused(key: str, value: str) -> None:
    with pytest.raises(SettingError, match=key.replace(".", r"\.")):
        auth.auth_type({**GITHUB, key: value})


def test_auth_config_is_a_mapping_of_what_is_given() -> None:
    config = auth.AuthConfig(github_repository="camptocamp/tilecloud-chain")
    assert "github_repository" in config
    assert "github_access_type" not in config
    assert config == {"github_repository": "camptocamp/tilecloud-chain"}


@pytest.mark.parametrize(
    ("headers", "query"), [({"X-API-Key": SECRET}, ""), ({}, f"?secret={SECRET}")], ids=["header", "query"]
)
def test_is_auth_user_with_the_secret(headers: dict[str, str], query: str) -> None:
    assert auth.is_auth_user(request_with({"c2c.secret": SECRET}, headers, query)) == (True, {})


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": SECRET[:-1]}])
def test_is_auth_user_without_the_secret(headers: dict[str, str]) -> None:
    assert auth.is_auth_user(request_with({"c2c.secret": SECRET}, headers)) == (False, {})


def test_nothing_is_signed_in_when_nothing_is_configured() -> None:
    request = request_with({}, {"X-API-Key": ""})
    assert auth.is_auth_user(request) == (False, {})
    assert not auth.is_auth(request)
    assert not auth.check_access(request)


def test_upstreams_auth_view_raises_403_without_the_secret() -> None:
    auth.auth_view(request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET}))
    with pytest.raises(HTTPForbidden):
        auth.auth_view(request_with({"c2c.secret": SECRET}))


def test_with_the_secret_being_signed_in_is_access() -> None:
    request = request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET})
    assert auth.check_access(request)
    assert auth.check_access(request, "camptocamp/any", "admin")
    assert auth.check_access_config(request, auth.AuthConfig(github_repository="camptocamp/any"))


def test_without_the_secret_there_is_no_access() -> None:
    request = request_with({"c2c.secret": SECRET}, {"X-API-Key": "wrong"})
    assert not auth.check_access(request)
    assert not auth.check_access_config(request, auth.AuthConfig(github_repository="camptocamp/any"))


def test_a_github_session_gives_the_users_details() -> None:
    signed_in, user = auth.is_auth_user(with_session(github_settings(), session()))
    assert signed_in
    assert user == USER


@pytest.mark.parametrize(
    "value",
    [
        session("another-signing-secret-of-16"),
        session(expiry_in=-1),
        session(expiry_in=7200),  # beyond the session lifetime (1 h)
        session().replace(".", ".x", 1),
        session().rpartition(".")[0] + "." + "A" * 43,
        auth.make_token(SIGNING, int(time.time() + 600)),  # an ops page token of the same secret
        "",
    ],
    ids=["other secret", "expired", "too long", "data changed", "mac changed", "ops token", "empty"],
)
def test_a_github_session_not_made_by_the_app_is_refused(value: str) -> None:
    assert auth.is_auth_user(with_session(github_settings(), value)) == (False, {})


def test_a_github_session_from_another_origin_is_refused() -> None:
    request = with_session(github_settings(), session(), {"Sec-Fetch-Site": "same-site"})
    assert auth.is_auth_user(request) == (False, {})


def test_a_github_session_counts_only_when_github_is_the_sign_in() -> None:
    request = with_session({**github_settings(), "c2c.secret": SECRET}, session())
    assert auth.is_auth_user(request) == (False, {})


def test_a_signed_in_github_user_without_reachable_permissions_has_no_access() -> None:
    request = with_session(github_settings(), session())
    assert auth.is_auth(request)  # signed in (upstream's is_auth), as tilecloud-chain's tenants need
    assert not auth.check_access(request)
    assert not auth.check_access_config(request, auth.AuthConfig(github_repository="camptocamp/allowed"))
    assert not auth.is_operator(request)


def test_check_access_config_refuses_a_repository_of_the_wrong_form() -> None:
    config = auth.AuthConfig(github_repository="../../user", github_access_type="push")
    assert not auth.check_access_config(with_session(github_settings(), session()), config)


def app(settings: dict[str, str]) -> webtest.TestApp:
    config = Configurator(settings={**settings, "c2c.log_view_secret": SECRET})
    config.include("c2cwsgiutils.pyramid")
    config.include("c2cwsgiutils.auth_github")
    return webtest.TestApp(config.make_wsgi_app())


def test_no_github_views_without_github() -> None:
    client = app({"c2c.secret": SECRET})
    client.get("/c2c/github-login", status=404)
    assert "Sign in with GitHub" not in client.get("/c2c/", headers={"Accept": "text/html"}).text


def test_the_login_sends_to_github_with_a_state_kept_in_a_cookie() -> None:
    client = app(github_settings())
    response = client.get("/c2c/github-login", status=302)
    location = urllib.parse.urlsplit(response.location)
    assert location._replace(query="").geturl() == "https://github.com/login/oauth/authorize"
    query = dict(urllib.parse.parse_qsl(location.query))
    assert (query["client_id"], query["scope"]) == ("client-id", "repo")
    assert query["redirect_uri"] == "http://localhost/c2c/github-callback"
    (cookie,) = response.headers.getall("Set-Cookie")
    assert cookie.startswith(f"{auth_github.STATE_COOKIE}=")
    assert "Path=/c2c/github-callback" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert query["state"] in cookie  # signed, not hidden: its use is to be compared


@pytest.mark.parametrize(
    "came_from",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "http://localhost.evil.example/",
        "https://localhost/",  # another scheme: another origin
        "http://localhost:8080/",  # another port: another origin
        "javascript:alert(1)",
        "relative/path",
        "/" + "x" * auth_github.MAX_CAME_FROM,
    ],
)
def test_the_page_to_return_to_must_be_of_the_same_origin(came_from: str) -> None:
    response = app(github_settings()).get(
        "/c2c/github-login", {"came_from": came_from}, status=400, expect_errors=True
    )
    assert response.json["message"].startswith("came_from: expected ")


@pytest.mark.parametrize(
    ("came_from", "kept"),
    [("/admin/?tenant=a", "/admin/?tenant=a"), ("http://localhost/admin/", "/admin/"), ("", "/c2c/")],
)
def test_a_page_of_the_same_origin_is_kept_in_the_state(came_from: str, kept: str) -> None:
    request = request_with(github_settings())
    assert auth_github.same_origin_target(request, came_from) == kept


def test_a_callback_without_the_login_cookie_is_refused() -> None:
    client = app(github_settings())
    response = client.get("/c2c/github-callback", {"code": "c", "state": "s"}, status=403)
    assert response.json["message"].startswith("state: does not match this browser's sign-in")


def test_a_callback_with_another_state_is_refused() -> None:
    client = app(github_settings())
    client.get("/c2c/github-login", status=302)
    response = client.get("/c2c/github-callback", {"code": "c", "state": "another"}, status=403)
    assert response.json["message"].startswith("state:")


def test_a_callback_with_an_oversized_code_is_a_400() -> None:
    client = app(github_settings())
    login = urllib.parse.urlsplit(client.get("/c2c/github-login").location)
    state = dict(urllib.parse.parse_qsl(login.query))
    response = client.get("/c2c/github-callback", {"code": "c" * 300, "state": state["state"]}, status=400)
    assert response.json["message"].startswith("code: expected one printable ASCII value")


def test_a_protected_ops_view_stays_closed_to_a_github_user_without_access() -> None:
    client = app(github_settings())
    client.set_cookie("c2c-auth-jwt", session())
    client.get("/c2c/logging/level?name=root", status=403)
    client.get("/c2c/logging/level?name=root", headers={"X-API-Key": SECRET}, status=200)


def test_the_page_names_the_signed_in_github_user() -> None:
    client = app(github_settings())
    assert "Sign in with GitHub" in client.get("/c2c/", headers={"Accept": "text/html"}).text
    client.set_cookie("c2c-auth-jwt", session())
    page = client.get("/c2c/", headers={"Accept": "text/html"}).text
    assert "Signed in with GitHub as <strong" in page
    assert "Octo Cat" in page
    assert "without the access that makes an operator" in page
    assert "gho_x" not in page


def test_a_long_page_of_the_same_origin_is_taken() -> None:
    came_from = "/admin/?" + "a" * 1500
    response = app(github_settings()).get("/c2c/github-login", {"came_from": came_from}, status=302)
    assert auth.urlsafe_text(came_from.encode()) in response.headers["Set-Cookie"]


class _GitHubApi(QuietHandler):
    """GitHub's repository endpoint: push on camptocamp/allowed; ``status`` answers every call."""

    calls: ClassVar[list[str]] = []
    status: ClassVar[int] = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.calls.append(self.path)
        if self.status != 200:
            self.send_body(self.status, b'{"message": "trouble"}')
        elif self.path == "/repos/camptocamp/allowed":
            self.send_body(200, b'{"permissions": {"pull": true, "push": true}}')
        else:
            self.send_body(404, b'{"message": "Not Found"}')


@pytest.fixture
def github_api() -> Iterator[tuple[str, type[_GitHubApi]]]:
    handler = type("GitHubApi", (_GitHubApi,), {"calls": [], "status": 200})
    with stub_server(handler) as url:
        yield url, handler


def test_an_empty_repository_in_a_config_is_no_access_not_the_settings_one(
    github_api: tuple[str, type[_GitHubApi]],
) -> None:
    url, _ = github_api
    request = with_session(github_settings(**{"c2c.auth.github.repo_url": f"{url}/repos"}), session())
    assert auth.check_access_config(request, auth.AuthConfig())  # missing: the settings' repository
    assert not auth.check_access_config(request, auth.AuthConfig(github_repository=""))
    assert not auth.check_access_config(request, auth.AuthConfig(github_access_type=""))


@pytest.mark.parametrize("status", [401, 500, 502])
def test_a_failing_github_is_asked_again_only_after_a_while(
    github_api: tuple[str, type[_GitHubApi]], status: int
) -> None:
    url, handler = github_api
    handler.status = status
    settings = github_settings(**{"c2c.auth.github.repo_url": f"{url}/repos"})
    config = Configurator(settings=settings)
    for _ in range(5):  # five requests of the same worker (one registry)
        request = with_session(settings, session())
        request.registry = config.registry
        assert not auth.check_access(request)
    assert len(handler.calls) == 1


def test_a_refused_callback_drops_the_state_cookie() -> None:
    client = app(github_settings())
    client.get("/c2c/github-login", status=302)
    response = client.get("/c2c/github-callback", {"code": "c", "state": "another"}, status=403)
    (cookie,) = response.headers.getall("Set-Cookie")
    assert cookie.startswith(f"{auth_github.STATE_COOKIE}=;")
    assert "Max-Age=0" in cookie


def test_the_github_links_are_under_the_prefix_the_app_is_served_at() -> None:
    """Behind PasteDeploy's prefix filter (c2cgeoportal's VISIBLE_ENTRY_POINT), SCRIPT_NAME leads."""
    client = app(github_settings())
    page = client.get("/c2c/", headers={"Accept": "text/html"}, extra_environ={"SCRIPT_NAME": "/geo"}).text
    assert 'href="/geo/c2c/github-login"' in page
    request = request_with(github_settings())
    request.script_name = "/geo"
    assert auth_github.same_origin_target(request, "") == "/geo/c2c/"


# C2C_SECRET given once keeps the browser signed in (upstream's behaviour; tilecloud-chain's admin page).


def secret_app() -> webtest.TestApp:
    def whoami(request: Request) -> dict[str, bool]:
        return {"signed_in": auth.is_auth(request)}

    config = Configurator(settings={"c2c.secret": SECRET})
    config.include("c2cwsgiutils.pyramid")
    config.add_route("whoami", "/whoami")
    config.add_view(whoami, route_name="whoami", renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(("query", "headers"), [({"secret": SECRET}, {}), ({}, {"X-API-Key": SECRET})])
def test_the_secret_given_once_keeps_the_browser_signed_in(
    query: dict[str, str], headers: dict[str, str]
) -> None:
    client = secret_app()
    first = client.get("/whoami", query, headers=headers)
    assert first.json == {"signed_in": True}
    (cookie,) = first.headers.getall("Set-Cookie")
    assert cookie.startswith(f"{auth.SECRET_COOKIE}=")
    assert SECRET not in cookie  # a signed token, never the secret
    assert all(part in cookie.lower() for part in ("path=/;", "httponly", "samesite=strict"))
    assert client.get("/whoami").json == {"signed_in": True}  # the cookie alone
    assert client.get("/whoami", headers={"Sec-Fetch-Site": "cross-site"}).json == {"signed_in": False}


def test_a_wrong_secret_sets_nothing_and_a_forged_session_is_refused() -> None:
    client = secret_app()
    refused = client.get("/whoami", {"secret": "not-the-secret"})
    assert (refused.json, refused.headers.getall("Set-Cookie")) == ({"signed_in": False}, [])
    client.set_cookie(auth.SECRET_COOKIE, auth.make_token("another-secret", int(time.time() + 60)))
    assert client.get("/whoami").json == {"signed_in": False}
    client.set_cookie(auth.SECRET_COOKIE, auth.make_token(SECRET, int(time.time() - 1)))  # expired
    assert client.get("/whoami").json == {"signed_in": False}


def test_signing_in_on_the_ops_page_with_c2c_secret_signs_the_app_in() -> None:
    client = secret_app()
    https = {"wsgi.url_scheme": "https"}
    response = client.post("/c2c/page/login", {"secret": SECRET}, extra_environ=https, status=303)
    assert any(
        cookie.startswith(f"{auth.SECRET_COOKIE}=") for cookie in response.headers.getall("Set-Cookie")
    )
    assert client.get("/whoami", extra_environ=https).json == {"signed_in": True}


class _Endless(QuietHandler):
    """An answer far larger than any GitHub answer: the reader must stop early."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b'{"permissions": {"push": true}, "pad": "')
            for _ in range(1024):  # 64 MiB in all, unless the client stops reading
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass  # the client hung up: what it should do


def test_github_s_answers_are_read_to_a_bound_only() -> None:
    with stub_server(_Endless) as url:
        with (
            requests.get(f"{url}/repos/camptocamp/allowed", stream=True, timeout=10) as response,
            pytest.raises(ValueError, match="over 65536 bytes"),
        ):
            auth.read_json(response, auth.GITHUB_MAX_ANSWER)
        settings = github_settings(**{"c2c.auth.github.repo_url": f"{url}/repos"})
        assert not auth.check_access(with_session(settings, session()))  # too large: no access
