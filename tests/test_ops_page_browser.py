"""The ops page driven in a real headless Chromium against the example app under c2cwsgiutils_run."""

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from c2cwsgiutils import auth
from c2cwsgiutils.acceptance.server import AppServer
from testing.browser import DESKTOP, PHONE, save_screenshot, wait_for_text
from testing.fixtures import StartServer

pytestmark = [pytest.mark.browser]

SECRET = "ops-page-secret-4821"  # noqa: S105 (made up, looked for where it must not be)
LOGGER = "c2cwsgiutils_ops_page_test"
ENV = {
    "LOG_VIEW_SECRET": SECRET,
    "SQL_PROFILER_SECRET": SECRET,
    "DEBUG_VIEW_SECRET": SECRET,
    "STATS_VIEW": "1",
}


def level_seen_by_a_worker(server: AppServer) -> str:
    """Ask a fresh connection (so: any worker) for the test logger's level, as JSON."""
    response = requests.get(
        server.url(f"/c2c/logging/level?name={LOGGER}"),
        headers={"X-API-Key": SECRET, "Connection": "close"},
        timeout=10,
    )
    response.raise_for_status()
    level: str = response.json()["level"]
    return level


def wait_for_script(driver: webdriver.Chrome) -> None:
    """Wait until the page's script has taken over the forms."""
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready"))


def sign_in(driver: webdriver.Chrome, server: AppServer) -> None:
    driver.get(server.url("/c2c/"))
    driver.find_element(By.CSS_SELECTOR, 'input[name="secret"]').send_keys(SECRET)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for_text(driver, "Signed in until")
    wait_for_script(driver)


def set_level(driver: webdriver.Chrome, level: str) -> None:
    form = driver.find_element(By.CSS_SELECTOR, '#logging_level form[method="post"]')
    name = form.find_element(By.NAME, "name")
    name.clear()
    name.send_keys(LOGGER)
    Select(form.find_element(By.NAME, "level")).select_by_visible_text(level)
    form.find_element(By.TAG_NAME, "button").click()
    result = driver.find_element(By.CSS_SELECTOR, "#logging_level pre.result")
    WebDriverWait(driver, 20).until(lambda _: f'"level": "{level}"' in result.text)


def test_sign_in_and_set_a_level_from_the_page(start_server: StartServer, browser: webdriver.Chrome) -> None:
    server = start_server(env=ENV)
    assert level_seen_by_a_worker(server) == "NOTSET"
    sign_in(browser, server)
    set_level(browser, "DEBUG")
    # The answer was shown in the page by its script: no navigation to the JSON.
    assert browser.current_url == server.url("/c2c/")
    # Applied on every worker, as the JSON view says.
    for _ in range(6):
        WebDriverWait(browser, 10).until(lambda _: level_seen_by_a_worker(server) == "DEBUG")
    save_screenshot(browser, "ops_page_desktop", DESKTOP)
    save_screenshot(browser, "ops_page_phone", PHONE)


def test_the_session_cookie_is_http_only_secure_strict_and_not_the_secret(
    start_server: StartServer, browser: webdriver.Chrome
) -> None:
    server = start_server(env=ENV)
    sign_in(browser, server)
    (cookie,) = [cookie for cookie in browser.get_cookies() if cookie["name"] == auth.COOKIE]
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (
        True,
        True,
        "Strict",
        "/c2c",
    )
    assert SECRET not in cookie["value"]
    # The page's script cannot read it.
    assert auth.COOKIE not in browser.execute_script("return document.cookie")
    # The secret went in a POST body only: in no URL the server saw.
    assert SECRET not in server.log()


def test_the_page_runs_the_health_check_and_switches_the_profiler(
    start_server: StartServer, browser: webdriver.Chrome
) -> None:
    server = start_server(env=ENV)
    sign_in(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#health_check button").click()
    health = browser.find_element(By.CSS_SELECTOR, "#health_check pre.result")
    WebDriverWait(browser, 30).until(lambda _: health.text[:1].isdigit())
    assert health.text.startswith("200 OK"), health.text
    browser.find_element(By.CSS_SELECTOR, '#sql_profiler button[value="1"]').click()
    profiler = browser.find_element(By.CSS_SELECTOR, "#sql_profiler pre.result")
    WebDriverWait(browser, 20).until(lambda _: '"enabled": true' in profiler.text)
    browser.find_element(By.CSS_SELECTOR, '#sql_profiler button[value="0"]').click()
    WebDriverWait(browser, 20).until(lambda _: '"enabled": false' in profiler.text)


def test_sign_out_locks_the_views_again(start_server: StartServer, browser: webdriver.Chrome) -> None:
    server = start_server(env=ENV)
    sign_in(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#session button").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[name="secret"]'))
    wait_for_script(browser)
    assert not [cookie for cookie in browser.get_cookies() if cookie["name"] == auth.COOKIE]
    browser.find_element(By.CSS_SELECTOR, '#logging_level form[method="get"] button').click()
    result = browser.find_element(By.CSS_SELECTOR, "#logging_level pre.result")
    WebDriverWait(browser, 20).until(lambda _: result.text.startswith("403"))
