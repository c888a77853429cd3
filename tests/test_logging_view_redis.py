"""The log level view, in-process, its broadcast through a private Redis (the redis_server fixture).

While Redis is paused, and what any parameters leave stored in Redis. With the broadcast in this
process only: tests/unit/test_logging_view.py.
"""

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
