"""The debug views, in-process: the secret, stacks, memory, headers and sleep of this one process.

From every worker of a real gunicorn: tests/test_debug_server.py.
"""

import os
import re
import threading
import time
from collections.abc import Iterator

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils import broadcast
from tests.apps import make_app

KEY = "d3bug"
HEADERS = {"X-API-Key": KEY}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[webtest.TestApp]:
    for name in ("DEBUG_VIEW_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    yield make_app(settings={"c2c.debug_view_secret": KEY})
    broadcast.BROADCASTER.reset()


@pytest.fixture
def short_timeout_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[webtest.TestApp]:
    """GUNICORN_TIMEOUT=2: debug/sleep sleeps at most 1 s."""
    monkeypatch.setenv("GUNICORN_TIMEOUT", "2")
    for name in ("DEBUG_VIEW_SECRET", "C2C_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    broadcast.BROADCASTER.reset()
    yield make_app(settings={"c2c.debug_view_secret": KEY})
    broadcast.BROADCASTER.reset()


@pytest.mark.parametrize("view", ["stacks", "memory", "headers", "sleep?time=0"])
def test_views_are_off_without_the_secret(monkeypatch: pytest.MonkeyPatch, view: str) -> None:
    monkeypatch.delenv("DEBUG_VIEW_SECRET", raising=False)
    make_app().get(f"/c2c/debug/{view}", status=404)


@pytest.mark.parametrize("view", ["stacks", "memory", "headers", "sleep?time=0"])
def test_views_need_the_secret(app: webtest.TestApp, view: str) -> None:
    assert app.get(f"/c2c/debug/{view}", status=403).json["status"] == 403
    app.get(f"/c2c/debug/{view}", headers={"X-API-Key": "wrong"}, status=403)


def test_stacks_show_every_thread_of_this_process(app: webtest.TestApp) -> None:
    body = app.get(f"/c2c/debug/stacks?secret={KEY}").json
    [process] = body["processes"]
    assert process["pid"] == os.getpid()
    main = process["threads"][0]
    assert main["name"] == "MainThread"
    assert any("in dump_stacks" in line for line in main["stack"])


def test_stacks_as_text_say_where_each_block_comes_from(app: webtest.TestApp) -> None:
    response = app.get("/c2c/debug/stacks?format=text", headers=HEADERS)
    assert response.content_type == "text/plain"
    assert re.search(
        rf"^# host \S+, pid {os.getpid()}, thread MainThread \(\d+\)$", response.text, re.MULTILINE
    )


def test_memory_lists_the_biggest_types(app: webtest.TestApp) -> None:
    [process] = app.get("/c2c/debug/memory?limit=5", headers=HEADERS).json["processes"]
    assert len(process["types"]) == 5
    sizes = [entry["bytes"] for entry in process["types"]]
    assert sizes == sorted(sizes, reverse=True)
    assert {"dict", "str", "function"} & {entry["type"] for entry in process["types"]}
    assert process["total_bytes"] >= sum(sizes)


def test_memory_rejects_a_bad_limit(app: webtest.TestApp) -> None:
    app.get("/c2c/debug/memory?limit=many", headers=HEADERS, status=400)


def test_headers_are_echoed_with_secrets_and_cookies_masked(app: webtest.TestApp) -> None:
    body = app.get(
        "/c2c/debug/headers?secret=" + KEY,
        headers={
            "Authorization": "Basic dXNlcjpwdw==",
            "Cookie": "session=abc",
            "X-Auth-Token": "tok",
            "X-Forwarded-For": "203.0.113.7",
            "Accept": "application/json",
        },
    ).json
    headers = body["headers"]
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Auth-Token"] == "***"
    assert headers["X-Forwarded-For"] == "203.0.113.7"
    assert headers["Accept"] == "application/json"
    assert KEY not in body["url"]


def test_headers_show_what_the_server_received_before_the_proxies_were_applied(
    app: webtest.TestApp,
) -> None:
    body = app.get(
        "/c2c/debug/headers",
        headers={**HEADERS, "X-Forwarded-For": "203.0.113.7"},
        extra_environ={"REMOTE_ADDR": "192.0.2.9"},  # not a trusted proxy: its header is not believed
    ).json
    assert body["client_addr"] == body["headers"]["X-Forwarded-For"] == "192.0.2.9"
    assert body["received"]["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"


def test_the_api_key_header_is_masked(app: webtest.TestApp) -> None:
    assert app.get("/c2c/debug/headers", headers=HEADERS).json["headers"]["X-Api-Key"] == "***"


@pytest.mark.parametrize(
    "name", ["Ocp-Apim-Subscription-Key", "X-Functions-Key", "X-Auth-Key", "X-Goog-Iap-Jwt-Assertion"]
)
def test_vendor_credential_headers_are_masked(app: webtest.TestApp, name: str) -> None:
    body = app.get("/c2c/debug/headers", headers={**HEADERS, name: "vendor-credential"}).json
    assert body["headers"][name] == "***"
    assert "vendor-credential" not in str(body)


def test_sleep_answers_after_the_time(app: webtest.TestApp) -> None:
    started = time.monotonic()
    assert app.get("/c2c/debug/sleep?time=300ms", headers=HEADERS).json["slept_seconds"] == 0.3
    assert time.monotonic() - started >= 0.3


def test_sleep_needs_a_time(app: webtest.TestApp) -> None:
    app.get("/c2c/debug/sleep", headers=HEADERS, status=400)
    app.get("/c2c/debug/sleep?time=soon", headers=HEADERS, status=400)


@pytest.mark.parametrize("time_", ["1e25", "9" * 400, "15.5", "16s", "1h", "-1", "nan", "inf", "²", "٣"])
def test_sleep_beyond_half_the_gunicorn_timeout_or_not_a_duration_is_400(
    app: webtest.TestApp, time_: str
) -> None:
    """GUNICORN_TIMEOUT is 30 s by default: at most 15 s."""
    body = app.get("/c2c/debug/sleep", params={"time": time_}, headers=HEADERS, status=400).json
    assert "expected a duration from 0 to 15 s" in body["message"]


def test_one_sleep_at_a_time_per_process(app: webtest.TestApp) -> None:
    statuses: list[int] = []
    first = threading.Thread(
        target=lambda: statuses.append(app.get("/c2c/debug/sleep?time=1", headers=HEADERS).status_int)
    )
    first.start()
    time.sleep(0.3)
    second = app.get("/c2c/debug/sleep?time=0", headers=HEADERS, status=429)
    first.join()
    assert statuses == [200]
    assert second.headers["Retry-After"] == "15"
    assert app.get("/c2c/debug/sleep?time=0", headers=HEADERS).json["slept_seconds"] == 0


@pytest.mark.parametrize("limit", ["²", "٣", "0", "1001", "9" * 100, "1.5", "-1", ""])
def test_memory_limit_is_a_whole_number_from_1_to_1000(app: webtest.TestApp, limit: str) -> None:
    body = app.get("/c2c/debug/memory", params={"limit": limit}, headers=HEADERS, status=400).json
    assert "expected a whole number from 1 to 1000" in body["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    view=st.sampled_from(["sleep", "memory"]),
    name=st.sampled_from(["time", "limit"]),
    value=st.text(max_size=60) | st.floats().map(str) | st.integers().map(str),
)
def test_debug_parameters_never_give_a_5xx(
    short_timeout_app: webtest.TestApp, view: str, name: str, value: str
) -> None:
    """Any text in any parameter: a 2xx or a JSON 4xx, never a 5xx; a sleep never longer than its cap."""
    started = time.monotonic()
    response = short_timeout_app.get(
        f"/c2c/debug/{view}", params={name: value}, headers=HEADERS, expect_errors=True
    )
    assert response.status_int < 500, response.text
    assert response.content_type == "application/json"
    if view == "sleep":
        assert time.monotonic() - started < 1.5
