"""CORS as a browser sees it: headless Chromium on a page of one origin calls the example app on another.

The page comes from a tiny static server of the test (127.0.0.1, one port); the example app runs
under c2cwsgiutils_run on another port, which makes it another origin. Its script makes the calls
with ``fetch`` and writes what happened into the page, where the test reads it.
"""

import http.server
import json
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.stub_server import stub_server
from testing.browser import save_screenshot, start_chromium
from testing.fixtures import EXAMPLE_APP_INI

pytestmark = [pytest.mark.browser, pytest.mark.server]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CORS calls</title></head>
<body>
<h1>Calls to another origin</h1>
<pre id="result">running</pre>
<script>
const target = new URLSearchParams(location.search).get("target");
async function call(name, path, init) {
  try {
    const response = await fetch(target + path, init);
    return [name, {ok: response.ok, status: response.status, body: await response.json()}];
  } catch (error) {
    return [name, {failed: String(error)}];
  }
}
const json = {"Content-Type": "application/json"};
Promise.all([
  call("credentials_get", "/api/cors/credentials", {credentials: "include"}),
  call("credentials_post", "/api/cors/credentials",
       {method: "POST", credentials: "include", headers: json, body: JSON.stringify({value: "hi"})}),
  call("credentials_invalid", "/api/cors/credentials",
       {method: "POST", credentials: "include", headers: json, body: "{}"}),
  call("public_get", "/api/cors/public", {}),
  call("public_with_credentials", "/api/cors/public", {credentials: "include"}),
  call("plain_get", "/api/ping", {credentials: "include"}),
  call("plain_post", "/api/hello",
       {method: "POST", credentials: "include", headers: json, body: JSON.stringify({value: "x"})}),
]).then((results) => {
  document.getElementById("result").textContent = JSON.stringify(Object.fromEntries(results), null, 2);
});
</script>
</body></html>
"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The origin of a static server that serves the calling page at any path."""
    with stub_server(_PageHandler) as url:
        yield url


def run_page(browser: webdriver.Chrome, page_origin: str, app: AppServer) -> dict[str, Any]:
    # A cookie of the app's host (ports do not split cookies): sent only with credentials.
    browser.get(app.url("/api/ping"))
    browser.add_cookie({"name": "example", "value": "from-the-browser", "path": "/"})
    browser.get(f"{page_origin}/page.html?target={app.base_url}")
    result = WebDriverWait(browser, 30).until(
        lambda driver: (text := driver.find_element(By.ID, "result").text) != "running" and text
    )
    save_screenshot(browser, "cors_calls")
    found: dict[str, Any] = json.loads(result)
    return found


@pytest.fixture(scope="module")
def results(page_origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What the page's calls gave: one browser and one app for all the tests of this module."""
    database = tmp_path_factory.mktemp("cors") / "app.sqlite"
    with AppServer(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": f"sqlite:///{database}"}, workers=1) as app:
        assert app.base_url != page_origin
        profile = tmp_path_factory.mktemp("chromium")
        browser = start_chromium(profile)
        try:
            yield run_page(browser, page_origin, app)
        finally:
            browser.quit()


def test_credentialed_call_to_a_cors_service_succeeds_with_the_cookie(results: dict[str, Any]) -> None:
    assert results["credentials_get"] == {
        "ok": True,
        "status": 200,
        "body": {"cors": True, "cookie": "from-the-browser"},
    }


def test_preflighted_post_to_a_cors_service_succeeds(results: dict[str, Any]) -> None:
    assert results["credentials_post"]["body"] == {"value": "hi", "cookie": "from-the-browser"}


def test_page_reads_a_validation_error_of_a_cors_service(results: dict[str, Any]) -> None:
    answer = results["credentials_invalid"]
    assert answer["status"] == 400
    assert answer["body"]["errors"] == [
        {"location": "body", "name": "value", "description": "a non-empty string is required"}
    ]


def test_call_without_credentials_to_a_public_service_succeeds(results: dict[str, Any]) -> None:
    assert results["public_get"]["body"] == {"cors": True}


def test_credentialed_call_to_a_service_without_credentials_fails(results: dict[str, Any]) -> None:
    assert "failed" in results["public_with_credentials"]


def test_call_to_a_route_without_cors_fails(results: dict[str, Any]) -> None:
    assert "failed" in results["plain_get"]


def test_preflighted_call_to_a_route_without_cors_fails(results: dict[str, Any]) -> None:
    assert "failed" in results["plain_post"]
