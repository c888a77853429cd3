import pytest

from c2cwsgiutils.scrub import scrub_query_string, scrub_request_line, scrub_text, scrub_url


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
