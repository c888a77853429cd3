"""Screenshots of a real headless Chromium compared with c2cwsgiutils.acceptance.image.

A small static page comes from a stub server of the test (127.0.0.1); its first screenshot becomes
the expected image (``generate_expected_image=True``) in the test's tmp folder, as a suite does once
before committing it. A second screenshot of the same page must match it exactly; a screenshot of
the changed page must fail with the actual and diff images written.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from selenium import webdriver

from c2cwsgiutils.acceptance.image import check_image, check_image_file
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from testing.browser import DESKTOP, save_screenshot

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Screenshot</title>
<style>
body {{ margin: 0; background: #fff; font: 20px sans-serif; }}
#box {{ position: absolute; left: 40px; top: 80px; width: 300px; height: 200px; background: {colour}; }}
</style></head>
<body><h1>A page to compare</h1><div id="box"></div></body></html>
"""


class PageHandler(QuietHandler):
    """Serve PAGE with the box in the colour the test sets."""

    colour = "#2050c0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_body(200, PAGE.format(colour=self.colour).encode(), "text/html; charset=utf-8")


@pytest.fixture
def page_url() -> Iterator[str]:
    PageHandler.colour = "#2050c0"
    with stub_server(PageHandler) as url:
        yield url + "/"


def screenshot(driver: webdriver.Chrome, url: str) -> npt.NDArray[np.uint8]:
    driver.get(url)
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as decoded:
        return np.asarray(decoded)


def test_screenshot_matches_the_expected_then_a_changed_page_fails(
    browser: webdriver.Chrome, page_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    expected = tmp_path / "page.expected.png"
    browser.set_window_size(*DESKTOP)
    check_image(results, screenshot(browser, page_url), expected, generate_expected_image=True)
    assert expected.is_file()

    check_image(results, screenshot(browser, page_url), expected)
    assert not results.joinpath("page.diff.png").exists()

    PageHandler.colour = "#c03020"
    browser.get(page_url)
    changed = save_screenshot(browser, "image-compare-changed", DESKTOP)
    with pytest.raises(AssertionError, match="similarity") as failure:
        check_image_file(results, changed, expected, level=0.99)
    assert str(results / "page.diff.png") in str(failure.value)
    assert results.joinpath("page.actual-masked.png").is_file()
