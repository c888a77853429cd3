import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from c2cwsgiutils.scrub import (
    SECRET_HEADER_WORDS,
    SecretValues,
    is_secret_environ_key,
    is_secret_header,
    mask_headers,
    scrub_query_string,
    scrub_request_line,
    scrub_text,
    scrub_url,
)
from tests.secret_forms import forms


@pytest.mark.parametrize(
    ("query", "scrubbed"),
    [
        ("secret=abc", "secret=***"),
        ("name=x&secret=abc&level=INFO", "name=x&secret=***&level=INFO"),
        ("name=x;secret=abc;level=INFO", "name=x;secret=***;level=INFO"),
        ("api_key=1&token=2&password=3&db_secret=4", "api_key=***&token=***&password=***&db_secret=***"),
        ("SECRET=abc", "SECRET=***"),
        ("name=secret", "name=secret"),
        ("plain", "plain"),
        # OAuth's authorization code (the GitHub sign-in's callback), and only a parameter named so.
        ("code=4f2a&state=s1", "code=***&state=s1"),
        ("postcode=1000&country_code=ch", "postcode=1000&country_code=ch"),
    ],
)
def test_scrub_query_string(query: str, scrubbed: str) -> None:
    assert scrub_query_string(query) == scrubbed


def test_scrub_url_keeps_the_path() -> None:
    assert scrub_url("/c2c/logging/level?secret=abc&name=x") == "/c2c/logging/level?secret=***&name=x"


def test_scrub_url_keeps_the_fragment() -> None:
    assert scrub_url("http://h/p?secret=abc#top") == "http://h/p?secret=***#top"


def test_scrub_url_without_query() -> None:
    assert scrub_url("/c2c/health_check") == "/c2c/health_check"


@pytest.mark.parametrize(
    ("query", "scrubbed"),
    [
        ("pass%77ord=abc", "pass%77ord=***"),
        ("%73ecret=abc&name=x", "%73ecret=***&name=x"),
        ("api%5Fkey=abc", "api%5Fkey=***"),
        ("api+key=abc", "api+key=abc"),  # "api key" is not a secret's name
        ("pass%2577ord=abc", "pass%2577ord=***"),  # encoded twice
        ("n%61me=secret", "n%61me=secret"),
    ],
)
def test_scrub_query_string_decodes_names(query: str, scrubbed: str) -> None:
    assert scrub_query_string(query) == scrubbed


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("secret=abc def", "secret=*** def"),
        ("secret=abc\tdef", "secret=***\tdef"),
        ("secret=abc#frag", "secret=***#frag"),
        ("token=", "token=***"),
    ],
)
def test_scrubbed_value_stops_at_whitespace_and_fragment(text: str, scrubbed: str) -> None:
    assert scrub_query_string(text) == scrubbed


def test_scrub_request_line_keeps_method_and_protocol() -> None:
    assert scrub_request_line("GET /api/ping?name=x&secret=hunter2 HTTP/1.1") == (
        "GET /api/ping?name=x&secret=*** HTTP/1.1"
    )


def test_scrub_request_line_scrubs_the_target_only() -> None:
    line = "POST http://h/token?password=p HTTP/1.0"
    assert scrub_request_line(line) == "POST http://h/token?password=*** HTTP/1.0"


def test_scrub_request_line_without_protocol() -> None:
    assert scrub_request_line("/p?secret=s") == "/p?secret=***"


def test_scrub_text_scrubs_a_url_quoted_in_a_message() -> None:
    message = "Invalid HTTP request line: 'GET /api/ping?pass%77ord=hunter2 HTTP/1.1'"
    assert scrub_text(message) == "Invalid HTTP request line: 'GET /api/ping?pass%77ord=*** HTTP/1.1'"


# Credential headers: one rule, by pattern.

VENDOR_CREDENTIAL_HEADERS = (
    "Ocp-Apim-Subscription-Key",
    "X-Functions-Key",
    "X-Auth-Key",
    "X-Goog-Iap-Jwt-Assertion",
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-API-Key",
    "X-Amz-Security-Token",
    "X-Hub-Signature-256",
    "X-Session-Id",
    "X-Client-Credentials",
    "X-Db-Password",
    "X-Webhook-Secret",
)
ORDINARY_HEADERS = (
    "Accept",
    "Accept-Encoding",
    "Content-Type",
    "Content-Length",
    "Host",
    "User-Agent",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Request-ID",
    "Connection",
    "Keep-Alive",
)


@pytest.mark.parametrize("name", VENDOR_CREDENTIAL_HEADERS)
def test_vendor_credential_headers_are_secret(name: str) -> None:
    assert is_secret_header(name)
    assert is_secret_environ_key("HTTP_" + name.upper().replace("-", "_"))


@pytest.mark.parametrize("name", ORDINARY_HEADERS)
def test_ordinary_headers_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)
    assert not is_secret_environ_key("HTTP_" + name.upper().replace("-", "_"))


_NAME_PART = st.text(alphabet="abcdefghilmnopqrvwxyz-_", max_size=12)  # none of the words' letters run


@given(prefix=_NAME_PART, word=st.sampled_from(SECRET_HEADER_WORDS), suffix=_NAME_PART, data=st.data())
def test_a_header_named_with_a_credential_word_in_any_case_is_masked(
    prefix: str, word: str, suffix: str, data: st.DataObject
) -> None:
    cased = "".join(data.draw(st.sampled_from((char.lower(), char.upper()))) for char in word)
    name = prefix + cased + suffix
    assert mask_headers({name: "value", "Accept": "text/html"}) == {name: "***", "Accept": "text/html"}


def test_the_environ_rule_is_for_header_keys_only() -> None:
    assert not is_secret_environ_key("SECRET_KEY")  # not a header: a frame's own variable name
    assert is_secret_environ_key("HTTP_X_FUNCTIONS_KEY")


# Secret values in every form.

_SECRET_CHARS = st.characters(codec="utf-8") | st.sampled_from("\\'\"%&+ /é€😀\n\t\x00")
SECRET_TEXTS = st.text(alphabet=_SECRET_CHARS, min_size=1, max_size=24)
# As long as a secret must be with Sentry on (sentry.MIN_SECRET_LENGTH).
LONG_SECRET_TEXTS = st.text(alphabet=_SECRET_CHARS, min_size=8, max_size=24)


@settings(max_examples=200, deadline=None)
@given(secret=SECRET_TEXTS, before=st.text(max_size=5), after=st.text(max_size=5), data=st.data())
def test_every_form_of_a_secret_is_masked(secret: str, before: str, after: str, data: st.DataObject) -> None:
    form = data.draw(st.sampled_from(forms(secret)))
    masked = SecretValues([secret]).mask(before + form + after)
    assert form not in masked or form in "***"


@settings(max_examples=100, deadline=None)
@given(secret=LONG_SECRET_TEXTS, data=st.data())
def test_a_secret_cut_short_before_an_ellipsis_is_masked(secret: str, data: st.DataObject) -> None:
    """sentry-sdk's max_value_length cuts a text anywhere and ends it with "...": the secret's start."""
    kept = data.draw(st.integers(min_value=1, max_value=len(secret)))
    which = data.draw(st.integers(min_value=0, max_value=len(forms(secret)) - 1))
    start = forms(secret[:kept])[which]
    assume(forms(secret)[which].startswith(start))  # a cut between two characters, not inside an escape
    masked = SecretValues([secret]).mask_cut(start + "...")
    assert masked.endswith("***...")
    assert set(masked.removesuffix("...")) == {"*"}  # nothing is left but the mask


def test_values_without_a_secret_are_left_alone() -> None:
    values = SecretValues(["review\\sec\\debug"])
    assert values.mask("review sec debug, 'review\\\\sec'") == "review sec debug, 'review\\\\sec'"
    assert SecretValues([]).mask("anything") == "anything"
