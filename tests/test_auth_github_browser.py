"""GitHub sign-in of the ops page, driven in headless Chromium against an app under c2cwsgiutils_run.

GitHub cannot be reached from here: a stand-in of its four endpoints (authorize page, token
exchange, user, repository permissions) is a small HTTP server of this test on 127.0.0.1, and
the C2C_AUTH_GITHUB_* URLs point at it. Everything else is real: the browser follows the
redirects, the app's workers make the calls with requests.
"""

import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from c2cwsgiutils import auth_github
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from testing.browser import wait_for_text
from testing.fixtures import StartServer

pytestmark = [pytest.mark.browser]

REPO = Path(__file__).parents[1]
CLIENT_ID = "stand-in-client-id"
CLIENT_SECRET = "stand-in-client-secret-3318"  # noqa: S105 (made up)
TOKEN = "gho_standInTokenOfTheOperator7741"  # noqa: S105 (made up, looked for where it must not be)
LOG_SECRET = "log-view-secret-5519"  # noqa: S105 (made up)
COOKIE = "c2c-auth-jwt"
APP_INI = "[app:main]\nuse = call:tests.apps.auth_github:factory\n"


class GitHubStandIn(QuietHandler):
    """GitHub's OAuth and REST endpoints as the app uses them, for one operator."""

    # Set per test (a subclass each time): what the authorize page does with the state.
    forge_state: ClassVar[bool] = False
    exchanges: ClassVar[list[dict[str, str]]]
    lock: ClassVar[threading.Lock]

    def _json(self, status: int, body: Any) -> None:
        self.send_body(status, json.dumps(body).encode())

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/login/oauth/authorize":
            # The operator has already authorized the app: GitHub sends the browser straight back.
            if query.get("client_id") != CLIENT_ID:
                self._json(400, {"error": "unknown client_id"})
                return
            state = "forged-state" if self.forge_state else query["state"]
            back = query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": "the-code", "state": state})
            self.send_response(302)
            self.send_header("Location", back)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"message": "Bad credentials"})
        elif url.path == "/user":
            self._json(
                200, {"login": "octo-operator", "name": "Octo Operator", "html_url": "https://gh.test/o"}
            )
        elif url.path == "/repos/camptocamp/allowed":
            self._json(200, {"full_name": "camptocamp/allowed", "permissions": {"pull": True, "push": True}})
        elif url.path == "/repos/camptocamp/denied":
            self._json(200, {"full_name": "camptocamp/denied", "permissions": {"pull": True, "push": False}})
        else:
            self._json(404, {"message": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        with self.lock:
            self.exchanges.append(form)
        if self.path != "/login/oauth/access_token" or self.headers.get("Accept") != "application/json":
            self._json(404, {"message": "Not Found"})
        elif (form.get("client_id"), form.get("client_secret"), form.get("code")) != (
            CLIENT_ID,
            CLIENT_SECRET,
            "the-code",
        ):
            self._json(200, {"error": "bad_verification_code"})
        else:
            self._json(200, {"access_token": TOKEN, "token_type": "bearer", "scope": "repo"})


def stand_in(forge_state: bool = False) -> type[GitHubStandIn]:
    return type(
        "GitHub",
        (GitHubStandIn,),
        {"forge_state": forge_state, "exchanges": [], "lock": threading.Lock()},
    )


def start_app(start_server: StartServer, tmp_path: Path, github: str) -> AppServer:
    ini = tmp_path / "auth_github.ini"
    ini.write_text(APP_INI, encoding="utf-8")
    env = {
        "PYTHONPATH": str(REPO),
        "C2C_AUTH_GITHUB_CLIENT_ID": CLIENT_ID,
        "C2C_AUTH_GITHUB_CLIENT_SECRET": CLIENT_SECRET,
        "C2C_AUTH_GITHUB_REPOSITORY": "camptocamp/allowed",
        "C2C_AUTH_GITHUB_SECRET": "a-session-signing-secret-of-the-test",
        "C2C_AUTH_GITHUB_AUTH_URL": f"{github}/login/oauth/authorize",
        "C2C_AUTH_GITHUB_TOKEN_URL": f"{github}/login/oauth/access_token",
        "C2C_AUTH_GITHUB_USER_URL": f"{github}/user",
        "C2C_AUTH_GITHUB_REPO_URL": f"{github}/repos",
        "LOG_VIEW_SECRET": LOG_SECRET,
    }
    return start_server(env=env, config_file=ini, workers=1)


@pytest.fixture
def github() -> Iterator[tuple[str, type[GitHubStandIn]]]:
    handler = stand_in()
    with stub_server(handler) as url:
        yield url, handler


def body_json(driver: webdriver.Chrome) -> Any:
    return json.loads(driver.find_element(By.TAG_NAME, "body").text)


def sign_in(driver: webdriver.Chrome, server: AppServer) -> None:
    driver.get(server.url("/c2c/"))
    driver.find_element(By.LINK_TEXT, "Sign in with GitHub").click()
    wait_for_text(driver, "Signed in with GitHub as Octo Operator")


def test_signing_in_with_github_opens_the_protected_views(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path, github: tuple[str, Any]
) -> None:
    url, handler = github
    server = start_app(start_server, tmp_path, url)
    browser.get(server.url("/c2c/logging/level?name=root"))
    assert body_json(browser)["status"] == 403  # not signed in yet
    sign_in(browser, server)
    assert browser.current_url == server.url("/c2c/")  # back on the page
    assert "(octo-operator), operator." in browser.find_element(By.ID, "github").text
    # The page's own script calls a protected view: the GitHub session opens it.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/c2c/logging/level?name=root').then(r => done(r.status), e => done(String(e)));"
    )
    assert status == 200
    browser.get(server.url("/access"))
    assert body_json(browser) == {
        "signed_in": True,
        "login": "octo-operator",
        "auth_type": "GITHUB",
        "camptocamp/allowed": True,
        "camptocamp/denied": False,
    }
    # The code was exchanged once, by the server, with the app's own client secret.
    assert [exchange["code"] for exchange in handler.exchanges] == ["the-code"]


def test_the_github_session_cookie_is_out_of_the_scripts_reach(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path, github: tuple[str, Any]
) -> None:
    server = start_app(start_server, tmp_path, github[0])
    sign_in(browser, server)
    (cookie,) = [cookie for cookie in browser.get_cookies() if cookie["name"] == COOKIE]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/")
    assert not cookie["secure"]  # served over plain http here: Secure comes with https
    scripts_see = browser.execute_script("return document.cookie")
    assert COOKIE not in scripts_see
    assert TOKEN not in scripts_see
    assert TOKEN not in browser.page_source
    assert TOKEN not in server.log()
    log = server.log()
    assert "github-callback?code=***" in log  # the access log's line, with the one-time code masked
    assert "the-code" not in log


def test_signing_out_drops_the_session(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path, github: tuple[str, Any]
) -> None:
    server = start_app(start_server, tmp_path, github[0])
    sign_in(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#github button").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.LINK_TEXT, "Sign in with GitHub"))
    assert COOKIE not in {cookie["name"] for cookie in browser.get_cookies()}
    browser.get(server.url("/access"))
    assert body_json(browser)["signed_in"] is False


def test_a_callback_with_a_forged_state_is_refused(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    handler = stand_in(forge_state=True)
    with stub_server(handler) as url:
        server = start_app(start_server, tmp_path, url)
        browser.get(server.url("/c2c/"))
        browser.find_element(By.LINK_TEXT, "Sign in with GitHub").click()
        WebDriverWait(browser, 20).until(lambda d: auth_github.CALLBACK in d.current_url)
        body = body_json(browser)
        assert body["status"] == 403
        assert body["message"].startswith("state:")
        assert handler.exchanges == []  # refused before any code exchange
        assert COOKIE not in {cookie["name"] for cookie in browser.get_cookies()}


def test_a_callback_without_state_is_refused(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path, github: tuple[str, Any]
) -> None:
    server = start_app(start_server, tmp_path, github[0])
    browser.get(server.url("/c2c/github-callback?code=the-code"))
    body = body_json(browser)
    assert (body["status"], body["message"].split(":")[0]) == (403, "state")
    assert github[1].exchanges == []


def test_the_page_to_return_to_must_be_of_the_same_origin(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path, github: tuple[str, Any]
) -> None:
    server = start_app(start_server, tmp_path, github[0])
    browser.get(server.url("/c2c/github-login?came_from=https://evil.example/"))
    body = body_json(browser)
    assert (body["status"], body["message"]) == (400, "came_from: expected a URL of this site")
    browser.get(server.url("/c2c/github-login?came_from=" + urllib.parse.quote(server.url("/access"))))
    WebDriverWait(browser, 20).until(lambda d: d.current_url == server.url("/access"))
    assert body_json(browser)["signed_in"] is True
