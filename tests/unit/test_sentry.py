"""c2cwsgiutils.sentry, in-process: events read back from a stand-in for Sentry's ingestion endpoint.

The stand-in (c2cwsgiutils.acceptance.sentry.SentryReceiver) is a real HTTP server on loopback, in
this process, that parses sentry-sdk's envelopes; sentry-sdk's real transport sends to it. The apps
run in WebTest. Under c2cwsgiutils_run, with real gunicorn workers: tests/test_sentry_server.py.
"""

import json
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils import debug, sentry
from c2cwsgiutils.acceptance.sentry import SentryReceiver, parse_envelope
from c2cwsgiutils.config_utils import SettingError
from c2cwsgiutils.logging_view import LoggingViewSettings
from c2cwsgiutils.ops_views import add_ops_view
from tests.secret_forms import forms, strings

LOG_SECRET = "log-view-secret-0123456789"  # noqa: S105 (made up, to look for in events)
QUERY_SECRET = "query-secret-abcdef"  # noqa: S105
HEADER_SECRET = "header-key-abcdef"  # noqa: S105
COOKIE_SECRET = "cookie-value-abcdef"  # noqa: S105
SECRETS = (LOG_SECRET, QUERY_SECRET, HEADER_SECRET, COOKIE_SECRET)


def fail(request: Request) -> Any:
    if request.params.get("reveal"):
        raise RuntimeError(f"the secret is {LOG_SECRET}")
    raise RuntimeError("failure on demand")


def forbidden(request: Request) -> Any:
    from pyramid.httpexceptions import HTTPForbidden

    raise HTTPForbidden("no")


def log_error(request: Request) -> Any:
    logging.getLogger("tests.sentry").warning("a breadcrumb of request %s", request.c2c_request_id)
    logging.getLogger("tests.sentry").error("the app logged an error")
    return {"logged": True}


def captured(request: Request) -> Any:
    try:
        with sentry.capture_exceptions():
            raise ValueError("caught by the app after capture_exceptions")
    except ValueError:
        return {"caught": True}


def make_app() -> webtest.TestApp:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    for name, view in (
        ("fail", fail),
        ("forbidden", forbidden),
        ("log_error", log_error),
        ("captured", captured),
    ):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    with SentryReceiver() as found:
        yield found


@pytest.fixture
def on(receiver: SentryReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[SentryReceiver]:
    """Sentry on, pointing at the stand-in; forgotten after the test."""
    monkeypatch.setenv("SENTRY_URL", receiver.dsn)
    monkeypatch.setenv("LOG_VIEW_SECRET", LOG_SECRET)
    monkeypatch.setenv("SENTRY_TAG_SERVICE", "tests")
    monkeypatch.setenv("GIT_HASH", "0123abc")
    try:
        yield receiver
    finally:
        sentry.reset()


def settle(receiver: SentryReceiver) -> list[dict[str, Any]]:
    """Return the events once sentry-sdk has sent everything queued."""
    assert sentry_sdk.flush(timeout=10) is None
    return list(receiver.events)


def test_off_without_sentry_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_URL", raising=False)
    assert sentry.init({}) is False
    assert not sentry.is_on()


def test_capture_exceptions_is_a_no_op_without_sentry() -> None:
    with pytest.raises(KeyError), sentry.capture_exceptions():
        raise KeyError("x")


def test_client_options_are_converted_to_the_options_types() -> None:
    environ = {
        "SENTRY_CLIENT_SAMPLE_RATE": "0.5",
        "SENTRY_CLIENT_ATTACH_STACKTRACE": "yes",
        "SENTRY_CLIENT_MAX_BREADCRUMBS": "10",
        "SENTRY_CLIENT_IN_APP_EXCLUDE": "a, b",
        "SENTRY_CLIENT_SERVER_NAME": "web-1",
        "SENTRY_CLIENT_TRACES_SAMPLE_RATE": "0.1",
        "SENTRY_CLIENT_RELEASE": "declared-setting-not-an-option",
    }
    assert sentry.client_options(environ) == {
        "sample_rate": 0.5,
        "attach_stacktrace": True,
        "max_breadcrumbs": 10,
        "in_app_exclude": ["a", "b"],
        "server_name": "web-1",
        "traces_sample_rate": 0.1,
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "SENTRY_CLIENT_NOT_AN_OPTION",
            "1",
            "SENTRY_CLIENT_NOT_AN_OPTION: 'not_an_option' is not a sentry_sdk",
        ),
        (
            "SENTRY_CLIENT_BEFORE_SEND",
            "x",
            "SENTRY_CLIENT_BEFORE_SEND: 'before_send' cannot be given as text",
        ),
        ("SENTRY_CLIENT_MAX_BREADCRUMBS", "many", "SENTRY_CLIENT_MAX_BREADCRUMBS='many': expected a whole"),
        ("SENTRY_CLIENT_DEBUG", "perhaps", "SENTRY_CLIENT_DEBUG='perhaps': expected one of"),
    ],
)
def test_bad_client_option_is_a_one_line_error_naming_it(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingError) as raised:
        sentry.client_options({variable: value})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_release_is_git_hash_unless_given(on: SentryReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_CLIENT_RELEASE", "latest")
    monkeypatch.setenv("SENTRY_CLIENT_ENVIRONMENT", "int")
    sentry.init({})
    assert sentry_sdk.get_client().options["release"] == "0123abc"
    assert sentry_sdk.get_client().options["environment"] == "int"
    monkeypatch.setenv("SENTRY_CLIENT_RELEASE", "2.1.0")
    sentry.init({})
    assert sentry_sdk.get_client().options["release"] == "2.1.0"


def test_unexpected_error_is_one_event_with_route_request_id_and_tags(on: SentryReceiver) -> None:
    app = make_app()
    response = app.get("/fail", status=500)
    events = settle(on)
    assert len(events) == 1
    event = events[0]
    assert event["tags"]["route"] == "fail"
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    assert event["tags"]["service"] == "tests"
    assert event["release"] == "0123abc"
    assert event["exception"]["values"][-1]["value"] == "failure on demand"
    assert event["request"]["method"] == "GET"


def test_errors_the_app_answers_with_4xx_are_not_reported(on: SentryReceiver) -> None:
    app = make_app()
    app.get("/forbidden", status=403)
    app.get("/nowhere", status=404)
    app.get("/fail", status=500)  # one event, to know everything before it was sent
    events = settle(on)
    assert [event["tags"]["route"] for event in events] == ["fail"]


def test_log_record_at_error_is_an_event_with_its_own_breadcrumbs_only(on: SentryReceiver) -> None:
    app = make_app()
    first = app.get("/log_error").headers["X-Request-ID"]
    second = app.get("/log_error").headers["X-Request-ID"]
    events = settle(on)
    assert [event["logentry"]["message"] for event in events] == ["the app logged an error"] * 2
    crumbs = [
        crumb["message"]
        for crumb in events[1]["breadcrumbs"]["values"]
        if crumb.get("category") == "tests.sentry"
    ]
    assert crumbs == [f"a breadcrumb of request {second}"]
    assert first not in str(events[1]["breadcrumbs"])


def test_capture_exceptions_reports_and_reraises(on: SentryReceiver) -> None:
    app = make_app()
    assert app.get("/captured").json == {"caught": True}
    events = settle(on)
    assert len(events) == 1
    assert events[0]["exception"]["values"][-1]["value"] == "caught by the app after capture_exceptions"
    assert events[0]["tags"]["route"] == "captured"


def test_initialising_twice_doubles_nothing(on: SentryReceiver) -> None:
    app = make_app()
    make_app()  # a second app in the same process: the include runs again
    sentry.init({})
    app.get("/fail", status=500)
    events = settle(on)
    assert len(events) == 1
    assert events[0]["tags"]["service"] == "tests"


def test_no_secret_reaches_an_event(on: SentryReceiver) -> None:
    app = make_app()
    app.get(
        f"/fail?reveal=1&secret={QUERY_SECRET}&other=1",
        headers={
            "X-API-Key": HEADER_SECRET,
            "Cookie": f"session={COOKIE_SECRET}",
            "Authorization": f"Bearer {HEADER_SECRET}",
        },
        status=500,
    )
    events = settle(on)
    assert len(events) == 1
    raw = on.raw().decode()
    for secret in SECRETS:
        assert secret not in raw
    assert events[0]["request"]["query_string"] == "reveal=1&secret=***&other=1"
    assert events[0]["request"]["headers"]["X-Api-Key"] == "***"
    assert "cookies" not in events[0]["request"]
    assert events[0]["exception"]["values"][-1]["value"] == "the secret is ***"


def test_no_secret_reaches_a_transaction(on: SentryReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_CLIENT_TRACES_SAMPLE_RATE", "1.0")
    sentry.init({})
    with (
        sentry_sdk.start_transaction(name=f"GET /x?secret={QUERY_SECRET}", op="http.server"),
        sentry_sdk.start_span(op="http.client", name=f"GET /y?token={QUERY_SECRET}"),
    ):
        pass
    settle(on)
    raw = on.raw().decode()
    assert '"type":"transaction"' in raw.replace(" ", "")
    assert QUERY_SECRET not in raw
    assert "secret=***" in raw


def test_parse_envelope_reads_items_with_and_without_length() -> None:
    body = b'{"event_id":"1"}\n{"type":"event","length":7}\n{"a":1}\n{"type":"client_report"}\n{"b":2}\n'
    assert parse_envelope(body) == [
        ({"type": "event", "length": 7}, b'{"a":1}'),
        ({"type": "client_report"}, b'{"b":2}'),
    ]


# Secret values in every form, and credential headers: through the real sentry-sdk to the receiver.

# Secrets as long as allowed, with what escaping changes: backslashes, quotes, %, &, +, spaces,
# non-ASCII; never '*', which the mask itself is made of.
_SPECIAL = "\\'\"%&+ /é€😀"
SECRET_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="*")
    | st.sampled_from(_SPECIAL),
    min_size=sentry.MIN_SECRET_LENGTH,
    max_size=30,
).filter(lambda secret: any(char in _SPECIAL for char in secret))


def failing_guarded_view(request: Request) -> Any:
    """Fail with the secret the client sent in local variables and the message, in many spellings."""
    given = request.GET["secret"]
    as_json = json.dumps({"key": given})
    as_bytes = given.encode()
    quoted = urllib.parse.quote(given)
    keyed = {given: "a dictionary keyed by the secret"}
    nested = [[given], {"inner": repr(given)}]
    raise RuntimeError(f"refused {given!r}, {as_json}, {quoted}, {as_bytes!r}, {len(keyed)}, {len(nested)}")


def guarded_app(settings: dict[str, str]) -> webtest.TestApp:
    """The toolkit with a view guarded by LOG_VIEW_SECRET (auth.guard) that fails."""
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    add_ops_view(
        config, "failing", "/failing", failing_guarded_view, secret=LoggingViewSettings.declaration("secret")
    )
    return webtest.TestApp(config.make_wsgi_app())


def assert_no_form_of(secret: str, events: list[dict[str, Any]]) -> None:
    texts = [text for event in events for text in strings(event)]
    for form in forms(secret):
        leaks = [text for text in texts if form in text]
        assert not leaks, (form, leaks[:3])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET_VALUES)
def test_no_form_of_a_secret_reaches_an_event(secret: str, clean_ops_state: None) -> None:
    """sentry-sdk shows local variables by repr(), which doubles a backslash: e.g. 'review\\sec\\debug'."""
    with SentryReceiver() as receiver:
        app = guarded_app({"c2c.sentry.url": receiver.dsn, "c2c.log_view_secret": secret})
        try:
            app.get(f"/c2c/failing?secret={urllib.parse.quote(secret)}", status=500)
            events = settle(receiver)
        finally:
            sentry.reset()
    assert len(events) == 1
    frames = events[0]["exception"]["values"][-1]["stacktrace"]["frames"]
    guarded = [frame for frame in frames if frame["function"] == "guarded_view"]
    assert guarded[0]["vars"]["expected"] in ("'***'", '"***"')  # the guard's own copy of the secret
    assert_no_form_of(secret, events)


def test_a_backslashed_secret_in_a_local_variable_is_masked(
    on: SentryReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case of the report: the guard's `expected`, 'review\\sec\\debug', repr'd."""
    secret = "review\\sec\\debug"  # noqa: S105 (made up)
    monkeypatch.setenv("LOG_VIEW_SECRET", secret)
    app = guarded_app({})
    app.get(f"/c2c/failing?secret={urllib.parse.quote(secret)}", status=500)
    events = settle(on)
    assert "review" not in on.raw().decode()
    assert_no_form_of(secret, events)


def test_a_secret_cut_by_max_value_length_leaves_no_start(
    on: SentryReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_CLIENT_MAX_VALUE_LENGTH", "40")
    secret = "0123456789-a-long-secret-cut-in-its-middle"  # noqa: S105 (made up)
    monkeypatch.setenv("LOG_VIEW_SECRET", secret)
    app = guarded_app({})
    app.get(f"/c2c/failing?secret={urllib.parse.quote(secret)}", status=500)
    settle(on)
    assert "0123456789" not in on.raw().decode()


@pytest.mark.parametrize("length", [1, 5, sentry.MIN_SECRET_LENGTH - 1])
def test_a_short_secret_stops_sentry_from_starting(
    on: SentryReceiver, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    monkeypatch.setenv("LOG_VIEW_SECRET", "s" * length)
    with pytest.raises(SettingError) as raised:
        sentry.init({})
    message = str(raised.value)
    assert message == (
        "environment variable LOG_VIEW_SECRET is too short to be masked in Sentry events "
        f"({length} characters; at least {sentry.MIN_SECRET_LENGTH} with SENTRY_URL set)"
    )
    assert not sentry.is_on()


def test_a_short_secret_in_the_ini_is_named_by_its_key(
    on: SentryReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOG_VIEW_SECRET")
    with pytest.raises(
        SettingError, match=r"^ini key c2c\.sql_profiler_secret is too short .*\(4 characters;"
    ):
        sentry.init({"c2c.sql_profiler_secret": "abcd"})


def test_a_short_secret_is_allowed_without_sentry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_URL", raising=False)
    monkeypatch.setenv("LOG_VIEW_SECRET", "abc")
    sentry.check()
    assert sentry.init({}) is False


VENDOR_HEADERS = {
    "Ocp-Apim-Subscription-Key": "apim-subscription-key-value",
    "X-Functions-Key": "functions-key-value",
    "X-Auth-Key": "auth-key-value",
    "X-Goog-Iap-Jwt-Assertion": "iap-jwt-assertion-value",
}


def environ_echo(request: Request) -> Any:
    """Fail with the WSGI environ (and so every header) as a local variable."""
    environ = {key: value for key, value in request.environ.items() if key.startswith("HTTP_")}
    raise RuntimeError(f"failure with {len(environ)} headers")


def test_vendor_credential_headers_are_masked_in_an_event(on: SentryReceiver) -> None:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.add_route("environ", "/environ")
    config.add_view(environ_echo, route_name="environ")
    webtest.TestApp(config.make_wsgi_app()).get("/environ", headers=VENDOR_HEADERS, status=500)
    (event,) = settle(on)
    headers = event["request"]["headers"]
    assert {name: headers[name] for name in VENDOR_HEADERS} == dict.fromkeys(VENDOR_HEADERS, "***")
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    environ = next(frame["vars"]["environ"] for frame in frames if frame["function"] == "environ_echo")
    assert environ["HTTP_X_FUNCTIONS_KEY"] == "***"
    raw = on.raw().decode()
    for value in VENDOR_HEADERS.values():
        assert value not in raw


_HEADER_NAMES = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,30}\Z") | st.sampled_from(
    [*VENDOR_HEADERS, "Authorization", "Cookie", "X-API-Key", "Accept", "X-Forwarded-For"]
)


# The patterns, and cookies.
CREDENTIAL_WORDS = (
    "key",
    "token",
    "secret",
    "auth",
    "session",
    "password",
    "signature",
    "jwt",
    "credential",
    "cookie",
)


@settings(max_examples=200, deadline=None)
@given(headers=st.dictionaries(_HEADER_NAMES, st.from_regex(r"\A[a-z0-9]{1,20}\Z"), max_size=6))
def test_events_and_the_debug_view_mask_headers_by_the_same_patterns(headers: dict[str, str]) -> None:
    """What the debug view shows of a header, an event shows too: masked when its name says credential."""
    request = Request.blank("/", headers=headers)
    received = dict(request.headers)
    expected = {
        name: "***" if any(word in name.lower() for word in CREDENTIAL_WORDS) else value
        for name, value in received.items()
    }
    event = sentry.make_before_send(sentry.Scrubber([]))({"request": {"headers": received}}, {})
    assert event is not None
    assert event["request"]["headers"] == expected
    assert json.loads(debug.headers_view(request).body)["headers"] == expected


def test_the_pipeline_s_sentry_filter_keeps_the_client_that_knows_the_ini_s_secrets(
    receiver: SentryReceiver, monkeypatch: pytest.MonkeyPatch, clean_ops_state: None
) -> None:
    """c2cgeoportal's ``pipeline = ... egg:c2cwsgiutils#sentry app``: the app is built first.

    Its include set Sentry up with the ini's secrets; the filter (and ``includeme()`` without a
    configurator) must not replace that client by one that knows the environment's only.
    """
    ini_secret = "a-secret-set-in-the-ini-only-8841"  # noqa: S105 (made up)
    monkeypatch.setenv("SENTRY_URL", receiver.dsn)
    try:
        app = guarded_app({"c2c.log_view_secret": ini_secret})
        wrapped = webtest.TestApp(sentry.filter_factory({})(app.app))
        sentry.includeme()
        wrapped.get(f"/c2c/failing?secret={ini_secret}", status=500)
        events = settle(receiver)
    finally:
        sentry.reset()
    assert len(events) == 1
    assert_no_form_of(ini_secret, events)
