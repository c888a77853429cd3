"""The log level view, in-process (the broadcast reaches this process only here)."""

import logging
import time
from collections.abc import Iterator

import pytest
import webtest

from c2cwsgiutils import broadcast, logging_view
from tests.apps import make_app

LOGGER = "c2cwsgiutils_test_level"
HEADERS = {"X-API-Key": "s3cret"}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[webtest.TestApp]:
    for name in ("LOG_VIEW_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    yield make_app(settings={"c2c.log_view_secret": "s3cret"})
    logging_view.OVERRIDES.reset()
    broadcast.BROADCASTER.reset()
    logging.getLogger(LOGGER).setLevel(logging.NOTSET)


def test_view_is_off_without_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_VIEW_SECRET", raising=False)
    make_app().get("/c2c/logging/level", status=404)


def test_view_needs_the_secret(app: webtest.TestApp) -> None:
    app.get(f"/c2c/logging/level?name={LOGGER}", status=403)


def test_get_reads_a_level(app: webtest.TestApp) -> None:
    body = app.get(f"/c2c/logging/level?name={LOGGER}", headers=HEADERS).json
    assert body == {"status": 200, "name": LOGGER, "level": "WARNING", "effective_level": "WARNING"}


def test_get_with_level_sets_it_as_the_spec_shows(app: webtest.TestApp) -> None:
    body = app.get(f"/c2c/logging/level?secret=s3cret&name={LOGGER}&level=debug").json
    assert (body["level"], body["effective_level"]) == ("DEBUG", "DEBUG")
    assert logging.getLogger(LOGGER).level == logging.DEBUG


def test_post_sets_a_level(app: webtest.TestApp) -> None:
    app.post("/c2c/logging/level", {"name": LOGGER, "level": "ERROR"}, headers=HEADERS)
    assert logging.getLogger(LOGGER).level == logging.ERROR


def test_without_name_lists_the_overrides(app: webtest.TestApp) -> None:
    assert app.get("/c2c/logging/level", headers=HEADERS).json == {"status": 200, "overrides": {}}
    app.get(f"/c2c/logging/level?name={LOGGER}&level=INFO", headers=HEADERS)
    assert app.get("/c2c/logging/level", headers=HEADERS).json["overrides"] == {LOGGER: {"level": "INFO"}}


def test_unknown_level_is_400_naming_the_allowed_ones(app: webtest.TestApp) -> None:
    response = app.get(f"/c2c/logging/level?name={LOGGER}&level=LOUD", headers=HEADERS, status=400)
    assert (
        response.json["message"]
        == "unknown level 'LOUD': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL, NOTSET"
    )
    assert logging.getLogger(LOGGER).level == logging.WARNING


def test_bad_duration_is_400(app: webtest.TestApp) -> None:
    response = app.get(
        f"/c2c/logging/level?name={LOGGER}&level=INFO&duration=soon", headers=HEADERS, status=400
    )
    assert "duration='soon'" in response.json["message"]


def test_duration_puts_the_level_back_by_itself(app: webtest.TestApp) -> None:
    app.get(f"/c2c/logging/level?name={LOGGER}&level=DEBUG&duration=300ms", headers=HEADERS)
    assert logging.getLogger(LOGGER).level == logging.DEBUG
    assert "until" in app.get("/c2c/logging/level", headers=HEADERS).json["overrides"][LOGGER]
    deadline = time.monotonic() + 5
    while logging.getLogger(LOGGER).level != logging.WARNING:
        assert time.monotonic() < deadline, "the level was not put back"
        time.sleep(0.02)
    assert app.get("/c2c/logging/level", headers=HEADERS).json["overrides"] == {}


def test_root_logger_by_name(app: webtest.TestApp) -> None:
    body = app.get("/c2c/logging/level?name=root", headers=HEADERS).json
    assert body["level"] == logging.getLevelName(logging.root.level)
