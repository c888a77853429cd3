"""Secrets, end to end: the example app under c2cwsgiutils_run with every secret configured.

Requests pass the secrets every accepted way (the X-API-Key header, the ``secret`` query
parameter between ``&`` or ``;``, its percent-encoded name, the ops page's session cookie) and
some wrong ones; then no secret may appear in the app log (console and JSON), the access log,
syslog datagrams, a Sentry event (a local receiver) or any response. Without a secret, the views
it guards do not exist. The comparisons are constant-time on equal-length digests.
"""

import hmac
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pyramid import testing

from c2cwsgiutils import auth
from c2cwsgiutils.acceptance.sentry import SentryReceiver
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import StartServer

# Each secret setting, with the view it guards.
GUARDED = {
    "LOG_VIEW_SECRET": "/c2c/logging/level",
    "SQL_PROFILER_SECRET": "/c2c/sql_profiler",
    "DEBUG_VIEW_SECRET": "/c2c/debug/stacks",
    "STATS_VIEW_SECRET": "/c2c/stats.json",
    "C2C_PROMETHEUS_SECRET": "/c2c/metrics",
    "DB_MAINTENANCE_SECRET": "/c2c/db/maintenance",
}
SECRETS = {name: f"{name.lower()}-{uuid.uuid4().hex}" for name in GUARDED}
SWITCHES = {"STATS_VIEW": "1", "C2C_PROMETHEUS": "1"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


class Exchanges:
    """Every response seen, to look for secrets in their headers and bodies."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.seen: list[requests.Response] = []

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(
            method, self.server.url(path), timeout=10, allow_redirects=False, **kwargs
        )
        self.seen.append(response)
        return response

    def text(self) -> str:
        return "\n".join(
            f"{response.status_code} {dict(response.headers)} {response.text}" for response in self.seen
        )


def sign_in(exchanges: Exchanges, secret: str) -> str:
    """Sign in on the ops page; return the session cookie's value."""
    response = exchanges.request("POST", "/c2c/page/login", data={"secret": secret}, headers=SAME_ORIGIN)
    assert response.status_code == 303, response.text
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.COOKIE}="), cookie
    return cookie.split(";")[0].partition("=")[2]


@pytest.fixture
def receivers() -> Iterator[tuple[SentryReceiver, UdpReceiver]]:
    with SentryReceiver() as sentry, UdpReceiver() as syslog:
        yield sentry, syslog


def test_no_secret_reaches_a_log_an_event_or_a_response(
    start_server: StartServer, receivers: tuple[SentryReceiver, UdpReceiver]
) -> None:
    sentry, syslog = receivers
    env = {
        **SECRETS,
        **SWITCHES,
        "SENTRY_URL": sentry.dsn,
        "LOG_TYPE": "console,json,syslog",
        "LOG_HOST": syslog.host,
        "LOG_PORT": str(syslog.port),
        "C2CWSGIUTILS_LOG_LEVEL": "DEBUG",
        "LOG_LEVEL": "DEBUG",
    }
    server = start_server(env=env, workers=2)
    exchanges = Exchanges(server)
    accepted: list[tuple[str, str, int]] = []
    for name, path in GUARDED.items():
        secret = SECRETS[name]
        quoted = urllib.parse.quote(secret)
        ways = {
            "header": exchanges.request("GET", path, headers={"X-API-Key": secret}),
            "query": exchanges.request("GET", f"{path}?secret={quoted}"),
            "query with &": exchanges.request("GET", f"{path}?a=1&secret={quoted}&b=2"),
            "query with ;": exchanges.request("GET", f"{path}?a=1;secret={quoted};b=2"),
            "encoded name": exchanges.request("GET", f"{path}?%73ecret={quoted}"),
        }
        cookie = sign_in(exchanges, secret)
        ways["cookie"] = exchanges.request(
            "GET", path, headers={"Cookie": f"{auth.COOKIE}={cookie}", **SAME_ORIGIN}
        )
        accepted += [(path, way, response.status_code) for way, response in ways.items()]
        # Wrong ones: near misses, in every place, and a wrong sign-in.
        exchanges.request("GET", path, headers={"X-API-Key": secret[:-1]})
        exchanges.request("GET", f"{path}?secret={quoted}x")
        exchanges.request("POST", "/c2c/page/login", data={"secret": secret + "x"}, headers=SAME_ORIGIN)
    # Secrets where the app fails: an error log, a Sentry event, a 500 body.
    first = next(iter(SECRETS.values()))
    exchanges.request(
        "GET",
        f"/api/error?status=500&secret={first}&password={first}&api_key={first}",
        headers={"X-API-Key": first, "Authorization": f"Bearer {first}"},
    )
    exchanges.request("GET", f"/api/error?status=400;secret={first}")
    assert {status for _, _, status in accepted} == {200}, accepted
    sentry.wait_for_events(1)
    wait_until(lambda: "/api/error?status=400" in server.log(), timeout=10, what="the access log")
    syslog.wait_for(lambda datagram: b"/api/error?status=400" in datagram, timeout=10)

    places = {
        "the server's log (app, JSON, access)": server.log(),
        "a Sentry event": sentry.raw().decode("utf-8", "replace"),
        "syslog": b"\n".join(syslog.received()).decode("utf-8", "replace"),
        "a response": exchanges.text(),
    }
    for name, secret in SECRETS.items():
        for place, text in places.items():
            assert secret not in text, f"{name} in {place}"
            assert urllib.parse.quote(secret) not in text, f"{name}, quoted, in {place}"
    assert "secret=***" in server.log()


# The views that exist only with their secret; stats.json and /metrics are switched on by
# STATS_VIEW and C2C_PROMETHEUS, their secrets optional (docs/metrics.md).
SECRET_ONLY = ["LOG_VIEW_SECRET", "SQL_PROFILER_SECRET", "DEBUG_VIEW_SECRET", "DB_MAINTENANCE_SECRET"]


@pytest.mark.parametrize("name", SECRET_ONLY)
def test_a_view_whose_secret_is_unset_does_not_exist(start_server: StartServer, name: str) -> None:
    others = {other: value for other, value in SECRETS.items() if other != name}
    server = start_server(env={**others, **SWITCHES}, workers=1)
    path = GUARDED[name]
    index = requests.get(server.url("/c2c/"), headers={"Accept": "application/json"}, timeout=10).json()
    assert path not in index["views"].values()
    for way in ({"headers": {"X-API-Key": ""}}, {"params": {"secret": ""}}, {}):
        response = requests.get(server.url(path), timeout=10, **way)  # type: ignore[arg-type]
        assert response.status_code == 404, (path, response.text)
        assert response.headers["Content-Type"].startswith("application/json")


def compared_lengths(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record the lengths of what every hmac.compare_digest call in auth compares."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


@pytest.mark.parametrize("given", ["x", "a-much-longer-guess-than-the-secret-" * 3])
def test_secrets_are_compared_as_equal_length_digests(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    calls = compared_lengths(monkeypatch)
    request = testing.DummyRequest(headers={auth.HEADER: given})
    assert auth.is_authorized(request, "s3cret") is False
    assert calls, "no constant-time comparison was made"
    assert all(left == right for left, right in calls), calls


def test_the_right_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = compared_lengths(monkeypatch)
    assert auth.is_authorized(testing.DummyRequest(headers={auth.HEADER: "s3cret"}), "s3cret") is True
    assert calls


def test_session_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = compared_lengths(monkeypatch)
    token = auth.make_token("s3cret", 2**33)
    expiry, _, mac = token.partition(".")
    assert auth.token_expiry(f"{expiry}.{mac[:-1]}x", "s3cret") is None
    assert auth.token_expiry(token, "s3cret") == 2**33
    assert calls
    assert all(left == right for left, right in calls), calls
