"""The log level view, in-process: the broadcast reaches this process, or goes through a private Redis."""

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils import broadcast, logging_view
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import RedisServer
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


# With Redis, paused (SIGSTOP): it keeps its connections and answers nothing.


@pytest.fixture
def redis_app(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> Iterator[webtest.TestApp]:
    for name in ("LOG_VIEW_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    settings = {
        "c2c.log_view_secret": "s3cret",
        "c2c.redis_url": redis_server.url,
        "c2c.broadcast_prefix": f"test_{uuid.uuid4().hex}",
    }
    yield make_app(settings=settings)
    logging_view.OVERRIDES.reset()
    broadcast.BROADCASTER.reset()
    logging.getLogger(LOGGER).setLevel(logging.NOTSET)


def test_the_listing_while_redis_is_paused_is_a_quick_503(
    redis_app: webtest.TestApp, redis_server: RedisServer
) -> None:
    redis_app.get(f"/c2c/logging/level?name={LOGGER}&level=INFO", headers=HEADERS)
    with redis_server.paused():
        for _ in range(2):
            started = time.monotonic()
            response = redis_app.get("/c2c/logging/level", headers=HEADERS, status=503)
            assert time.monotonic() - started < 1
            assert "cannot be read" in response.json["message"]
            assert response.json["stored"] == "unknown"
    wait_until(
        lambda: redis_app.get("/c2c/logging/level", headers=HEADERS, expect_errors=True).status_int == 200,
        5,
        "the listing answers once Redis does",
    )
    listing = redis_app.get("/c2c/logging/level", headers=HEADERS).json
    assert listing["overrides"] == {LOGGER: {"level": "INFO"}}


def test_a_change_while_redis_is_paused_is_applied_here_and_queued_202(
    redis_app: webtest.TestApp, redis_server: RedisServer
) -> None:
    with redis_server.paused():
        started = time.monotonic()
        response = redis_app.get(f"/c2c/logging/level?name={LOGGER}&level=DEBUG", headers=HEADERS, status=202)
        assert time.monotonic() - started < 1
        assert response.json["level"] == "DEBUG"
        assert "queued" in response.json["message"]

    def stored_level() -> str | None:
        with contextlib.suppress(broadcast.TransportError):
            return broadcast.stored(logging_view.CHANNEL).get(LOGGER, {}).get("level")
        return None

    wait_until(lambda: stored_level() == "DEBUG", 5, "the queued change is stored once Redis answers")
    assert redis_app.get(f"/c2c/logging/level?name={LOGGER}&level=INFO", headers=HEADERS).status_code == 200


# The property: whatever the parameters, a quick JSON answer, never a 5xx, nothing stored beyond the limits.

names = st.one_of(
    st.sampled_from(["root", "", LOGGER, f"{LOGGER}.child", "a..b", "a b", "\x00"]),
    st.text(max_size=40),
    st.integers(min_value=logging_view.MAX_NAME_LENGTH - 2, max_value=logging_view.MAX_NAME_LENGTH + 2).map(
        lambda size: "a" * size
    ),
)
# A stored level holds its name three times (field, state key, parameter), at most 4 bytes a character.
ENTRY_LIMIT = 3 * 4 * logging_view.MAX_NAME_LENGTH + 512
levels = st.one_of(st.sampled_from([*logging_view.LEVELS, "debug ", "LOUD", ""]), st.text(max_size=10))
durations = st.one_of(
    st.sampled_from(["", "0", "1ms", "10m", "168h", "169h", "1e26", "nan", "inf", "-5s", "604800", "604801"]),
    st.text(max_size=12),
    st.integers(min_value=0, max_value=10**400).map(str),
    st.floats().map(str),
    st.just("1" * 400),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.none() | names,
    level=st.none() | levels,
    duration=st.none() | durations,
    method=st.sampled_from(["GET", "POST"]),
    times=st.sampled_from([1, 1, 1, 4000]),  # how many times the name is repeated: up to 1 MB
)
def test_any_parameters_get_a_quick_json_answer_and_store_within_the_limits(  # noqa: PLR0917 (hypothesis)
    redis_app: webtest.TestApp,
    redis_server: RedisServer,
    name: str | None,
    level: str | None,
    duration: str | None,
    method: str,
    times: int,
) -> None:
    name = None if name is None else name * times
    params = {
        key: value
        for key, value in (("name", name), ("level", level), ("duration", duration))
        if value is not None
    }
    started = time.monotonic()
    if method == "GET":
        response = redis_app.get("/c2c/logging/level", params, headers=HEADERS, expect_errors=True)
    else:
        response = redis_app.post("/c2c/logging/level", params, headers=HEADERS, expect_errors=True)
    # Never hangs: a stall would be the Redis client's timeouts (seconds); 5 s leaves room for a
    # busy machine, which this assertion is not about.
    assert time.monotonic() - started < 5, params
    # 413: a body beyond what an ops view reads.
    assert response.status_int in {200, 202, 400, 413}, (params, response.body[:300])
    assert response.content_type == "application/json"
    if name is not None:
        assert len(response.body) < 1000  # nothing is echoed whole
    with redis.Redis.from_url(redis_server.url) as client:
        state = client.hgetall(f"{redis_app.app.registry.settings['c2c.broadcast_prefix']}:state")
    assert len(state) <= logging_view.MAX_OVERRIDES
    assert all(len(field) + len(value) <= ENTRY_LIMIT for field, value in state.items())
    for timer in list(logging_view.OVERRIDES.timers.values()):
        assert timer.interval <= logging_view.MAX_DURATION
