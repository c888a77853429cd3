"""A form built with c2cwsgiutils.index's helpers, on the ops page in headless Chromium.

It renders (escaped, inside the app's card) and submits under the page's Content-Security-Policy,
with no script of its own.
"""

import json
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from testing.browser import save_screenshot
from testing.fixtures import StartServer
from tests.apps.index_page import HOSTILE

APP_INI = """\
[app:main]
use = call:tests.apps.index_page:factory
"""


def test_a_helper_built_form_renders_and_submits_under_the_policy(
    start_server: StartServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    ini = tmp_path / "index_page.ini"
    ini.write_text(APP_INI, encoding="utf-8")
    server = start_server(env={"PYTHONPATH": str(Path(__file__).parents[1])}, config_file=ini, workers=1)
    browser.get(server.url("/c2c/"))
    card = browser.find_element(By.CSS_SELECTOR, "section#app")
    # The hostile texts are shown as text; no script of theirs ran.
    assert HOSTILE in card.find_elements(By.TAG_NAME, "h2")[1].text
    assert browser.execute_script("return window.pwned === undefined")
    # The fragments' unbalanced <div>s stay inside the card: the table of views follows it.
    assert browser.find_elements(By.CSS_SELECTOR, "section#app + section#views")
    field = card.find_element(By.NAME, "comment")
    assert field.get_attribute("value") == HOSTILE
    save_screenshot(browser, "ops_page_app_fragments")
    field.clear()
    field.send_keys("sent from the page")
    card.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    WebDriverWait(browser, 20).until(lambda d: d.current_url == server.url("/index-echo"))
    answer = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert answer == {"fields": {"comment": "sent from the page", "verbose": "true"}}
