import pytest

from c2cwsgiutils.scrub import scrub_query_string, scrub_url


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
