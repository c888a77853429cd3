"""The log level view, in-process: the broadcast reaches this process only (no Redis).

Through a private Redis, paused or not: tests/test_logging_view_redis.py.
"""

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


# Bounds: every parameter has a type, a range and a size limit.


def test_a_duration_beyond_a_week_is_400_naming_the_limit(app: webtest.TestApp) -> None:
    for duration in ("169h", "100000000000000000000000000", "1" * 400):
        response = app.get(
            f"/c2c/logging/level?name={LOGGER}&level=DEBUG&duration={duration}", headers=HEADERS, status=400
        )
        assert "at most 168h (a week)" in response.json["message"]
        assert len(response.body) < 500  # the value is not echoed whole
    assert logging.getLogger(LOGGER).level == logging.WARNING
    assert app.get("/c2c/logging/level", headers=HEADERS).json["overrides"] == {}


def test_a_zero_duration_is_400(app: webtest.TestApp) -> None:
    response = app.get(
        f"/c2c/logging/level?name={LOGGER}&level=DEBUG&duration=0", headers=HEADERS, status=400
    )
    assert "more than 0" in response.json["message"]


def test_a_week_is_accepted_and_reverts(app: webtest.TestApp) -> None:
    app.get(f"/c2c/logging/level?name={LOGGER}&level=DEBUG&duration=168h", headers=HEADERS)
    assert logging.getLogger(LOGGER).level == logging.DEBUG
    until = app.get("/c2c/logging/level", headers=HEADERS).json["overrides"][LOGGER]["until"]
    assert until == pytest.approx(time.time() + 168 * 3600, abs=5)
    assert LOGGER in logging_view.OVERRIDES.timers


@pytest.mark.parametrize("size", [logging_view.MAX_NAME_LENGTH + 1, 5_000_000], ids=["just over", "5 MB"])
def test_a_name_too_long_is_400_and_nothing_is_stored(app: webtest.TestApp, size: int) -> None:
    name = "a" * size
    for params in ({"name": name}, {"name": name, "level": "DEBUG"}):
        response = app.get("/c2c/logging/level", params, headers=HEADERS, status=400)
        assert f"at most {logging_view.MAX_NAME_LENGTH} characters" in response.json["message"]
        assert len(response.body) < 500
    # Reading it made no logger either.
    assert max(map(len, logging.Logger.manager.loggerDict)) <= logging_view.MAX_NAME_LENGTH
    assert broadcast.stored(logging_view.CHANNEL) == {}


@pytest.mark.parametrize("name", ["a b", "a..b", ".a", "a.", "a\x00b", "a/b", "é\n"])
def test_a_name_that_is_not_a_dotted_logger_name_is_400(app: webtest.TestApp, name: str) -> None:
    response = app.post("/c2c/logging/level", {"name": name, "level": "DEBUG"}, headers=HEADERS, status=400)
    assert "dotted logger name" in response.json["message"]
    assert name not in logging.Logger.manager.loggerDict


def test_names_with_digits_dashes_and_the_root_are_accepted(app: webtest.TestApp) -> None:
    for name in ("sqlalchemy.engine.Engine", "my-app.v2", "", "root", "a" * logging_view.MAX_NAME_LENGTH):
        app.get("/c2c/logging/level", {"name": name}, headers=HEADERS, status=200)


def test_a_stored_call_with_a_far_until_reverts_within_a_week() -> None:
    """A stored call the view never makes (another version, written by hand) cannot crash a worker."""
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    try:
        logging_view._set_level(LOGGER, "DEBUG", time.time() + 1e26)
        assert logging.getLogger(LOGGER).level == logging.DEBUG
        timer = logging_view.OVERRIDES.timers[LOGGER]
        assert timer.is_alive()
        assert timer.interval <= logging_view.MAX_DURATION
    finally:
        logging_view.OVERRIDES.reset()
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)


@pytest.mark.parametrize("until", [float("inf"), float("nan"), 10**400, "soon", True])
def test_a_stored_call_with_an_until_that_is_not_a_time_is_refused(until: object) -> None:
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    try:
        with pytest.raises(ValueError, match="until"):
            logging_view._set_level(LOGGER, "DEBUG", until)  # type: ignore[arg-type]
        assert logging.getLogger(LOGGER).level == logging.WARNING
    finally:
        logging_view.OVERRIDES.reset()
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)


def test_no_more_than_max_overrides_are_stored(app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging_view, "MAX_OVERRIDES", 3)
    names = [f"{LOGGER}.n{index}" for index in range(3)]
    try:
        for name in names:
            app.get("/c2c/logging/level", {"name": name, "level": "INFO"}, headers=HEADERS)
        response = app.get(
            "/c2c/logging/level", {"name": f"{LOGGER}.more", "level": "INFO"}, headers=HEADERS, status=400
        )
        assert "at most 3 loggers" in response.json["message"]
        app.get("/c2c/logging/level", {"name": names[0], "level": "ERROR"}, headers=HEADERS)  # a known one
        assert len(broadcast.stored(logging_view.CHANNEL)) == 3
    finally:
        for name in [*names, f"{LOGGER}.more"]:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_expired_overrides_are_forgotten_and_leave_room(
    app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging_view, "MAX_OVERRIDES", 1)
    app.get("/c2c/logging/level", {"name": LOGGER, "level": "INFO", "duration": "50ms"}, headers=HEADERS)
    time.sleep(0.1)
    other = f"{LOGGER}.other"
    try:
        app.get("/c2c/logging/level", {"name": other, "level": "INFO"}, headers=HEADERS)
        assert set(broadcast.stored(logging_view.CHANNEL)) == {other}
    finally:
        logging.getLogger(other).setLevel(logging.NOTSET)
