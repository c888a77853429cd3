"""A real headless Chromium for the browser tests (CORS from another origin, the ops page).

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them), driven by Selenium
through the driver's own path, so Selenium never downloads a browser or a driver. Tests ask for
the ``browser`` fixture; screenshots go to ``screenshots/`` (git-ignored) for people to look at.
"""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parent.parent / "screenshots"

# The closed network refuses Chromium's own background connections, many at a time: switch them
# off, and never reuse a profile between tests.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
)

DESKTOP = (1280, 900)
PHONE = (390, 844)


def start_chromium(profile: Path, width: int = DESKTOP[0], height: int = DESKTOP[1]) -> webdriver.Chrome:
    """Start a fresh headless Chromium with the empty profile folder ``profile``."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium at desktop size, quit (and its profile removed) after the test."""
    profile = Path(tempfile.mkdtemp(prefix="c2c-chromium-"))
    try:
        driver = start_chromium(profile)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(driver: webdriver.Chrome, name: str, size: tuple[int, int] = DESKTOP) -> Path:
    """Resize the window to ``size`` and save a PNG of the page as ``screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.set_window_size(*size)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for_text(driver: webdriver.Chrome, text: str, timeout: float = 20) -> None:
    """Wait until the page's text holds ``text``, across the page loads on the way.

    The text is read by a script, not through an element found first: an element found just
    before a load is gone when its text is read, which Chromium reports either as a stale element
    or as an unknown error ("Node with given id does not belong to the document"). Errors while a
    page loads are retried until ``timeout``.
    """
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: text in (d.execute_script("return document.body ? document.body.innerText : ''") or "")
    )
