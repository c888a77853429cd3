"""SQL metric keys, in-process: the original c2cwsgiutils' keys of a statement's text, safe on hostile ones.

The original keyed a query by a simplified text: a SELECT without its column list, an INSERT by
its table, an UPDATE without its SET list, ``IN (...)`` as ``IN (?)``, parameters as ``?``.
Dashboards built on those keys must keep their series: stats.json, statsd and Prometheus'
``query`` label all use :func:`c2cwsgiutils.stats_pyramid.sql_key`. The ORM's statements on the
local PostgreSQL, in this process and in every backend of a real server:
tests/test_stats_sql_keys_postgres.py.
"""

import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2cwsgiutils import stats_pyramid


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    stats_pyramid.reset()
    yield
    stats_pyramid.reset()


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        # What SQLAlchemy sends through psycopg2, the original's driver.
        (
            "SELECT hello.id AS hello_id, hello.value AS hello_value \nFROM hello \n LIMIT %(param_1)s",
            "SELECT FROM hello LIMIT ?",
        ),
        ("INSERT INTO hello (value) VALUES (%(value)s) RETURNING hello.id", "INSERT INTO hello"),
        (
            "UPDATE hello SET value=%(value)s, n=%(n)s WHERE hello.id = %(hello_id)s",
            "UPDATE hello SET WHERE hello.id = ?",
        ),
        (
            "SELECT hello.id \nFROM hello \nWHERE hello.id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s)",
            "SELECT FROM hello WHERE hello.id IN (?)",
        ),
        (
            "DELETE FROM hello WHERE hello.id IN (%(id_1_1)s, %(id_1_2)s)",
            "DELETE FROM hello WHERE hello.id IN (?)",
        ),
        # ...and through psycopg 3, which casts the parameters: the same keys.
        ("SELECT hello.id \nFROM hello \n LIMIT %(param_1)s::INTEGER", "SELECT FROM hello LIMIT ?"),
        (
            "UPDATE hello SET value=%(value)s::VARCHAR WHERE hello.id = %(hello_id)s::INTEGER",
            "UPDATE hello SET WHERE hello.id = ?",
        ),
        (
            "SELECT hello.id FROM hello WHERE hello.id IN (%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER) "
            "AND hello.t > %(t_1)s::TIMESTAMP WITH TIME ZONE AND hello.a = %(a_1)s::INTEGER[]",
            "SELECT FROM hello WHERE hello.id IN (?) AND hello.t > ? AND hello.a = ?",
        ),
        (
            "INSERT INTO hello (value) SELECT p0::VARCHAR FROM (VALUES (%(value__0)s::VARCHAR, 0), "
            "(%(value__1)s::VARCHAR, 1)) AS imp_sen(p0, sen_counter) ORDER BY sen_counter RETURNING hello.id",
            "INSERT INTO hello",
        ),
        # Subqueries lose their column lists too; a cast the query writes on a column stays.
        (
            "SELECT count(*) AS count_1 \nFROM (SELECT hello.id AS hello_id \nFROM hello) AS anon_1",
            "SELECT FROM (SELECT FROM hello) AS anon_1",
        ),
        ("SELECT x::text FROM t WHERE y::text = :y", "SELECT FROM t WHERE y::text = ?"),
    ],
)
def test_key_is_the_originals(statement: str, key: str) -> None:
    assert stats_pyramid.normalize_sql(statement) == key


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        ("SELECT * FROM t WHERE id = 12 AND name = 'o''hara'", "SELECT FROM t WHERE id = ? AND name = ?"),
        ("SELECT 1", "SELECT ?"),
        ("SELECT * FROM (VALUES (1, 2), (3, 4)) AS v", "SELECT FROM (VALUES (?, ?)) AS v"),
        ('SELECT "Col1" FROM "T2" LIMIT ? OFFSET 10', 'SELECT FROM "T2" LIMIT ? OFFSET ?'),
        ("select a from t where b in ($1, $2)", "select a from t where b IN (?)"),
    ],
)
def test_literals_are_question_marks_for_safety(statement: str, key: str) -> None:
    """No value in a metric name: literals (which the original kept) and every parameter style are ``?``."""
    assert stats_pyramid.normalize_sql(statement) == key


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="SELECT FROMWHERE x", max_size=60),
    st.sampled_from([("SELECT ", " FROM", "SELECT FROM"), ("SET ", " WHERE", "SET WHERE")]),
)
def test_replace_between_does_what_the_regex_did(text: str, rule: tuple[str, str, str]) -> None:
    """The linear form of the original's ``re.sub("SELECT .*? FROM", "SELECT FROM", ...)`` (and SET)."""
    start, end, replacement = rule
    expected = re.sub(re.escape(start) + ".*?" + re.escape(end), replacement, text)
    assert stats_pyramid._replace_between(text, start, end, replacement) == expected


HOSTILE = {
    "SELECTs without FROM": "SELECT " * 15_000,
    "SETs without WHERE": "UPDATE t SET " * 8_000,
    "INSERTs without columns": "INSERT INTO " * 8_000,
    "an unterminated string": "'" + "a" * 100_000,
    "digits": "1" * 100_000 + "x",
    "an unclosed IN list": "x IN (" + "?, " * 33_000,
    "rows": "(?, ?), " * 12_000 + "(",
    "casts": "?::" * 33_000,
    "quoted casts": '?::"' * 25_000,
    "cast arguments": "?::N(" + "1, " * 33_000,
    "whitespace": " \t\n" * 33_000 + "x",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_100_kb_statement_is_keyed_fast(name: str) -> None:
    """Linear steps only: ``SELECT .*? FROM`` as a regex takes about 30 s on the first one."""
    started = time.perf_counter()
    stats_pyramid.normalize_sql(HOSTILE[name])
    assert time.perf_counter() - started < 1.0


def test_distinct_shapes_are_capped() -> None:
    for index in range(stats_pyramid.MAX_QUERIES):
        statement = f"SELECT a FROM table_{index}"  # noqa: S608 (a statement to key, never run)
        assert stats_pyramid.sql_key(statement) == f"SELECT FROM table_{index}"
    assert stats_pyramid.sql_key("SELECT a FROM one_too_many") == "other"
    assert stats_pyramid.sql_key("SELECT b FROM table_0") == "SELECT FROM table_0"  # a known shape


def test_long_statements_are_keyed_but_not_remembered() -> None:
    """The cache of statement texts holds no long text: 2,000 of 100 kB each would be 200 MB."""
    long_statement = "SELECT a FROM t WHERE b IN (" + ", ".join(["%(p)s"] * 20_000) + ")"  # noqa: S608
    assert stats_pyramid.sql_key(long_statement) == "SELECT FROM t WHERE b IN (?)"
    assert stats_pyramid.sql_key("SELECT a FROM t") == "SELECT FROM t"
    assert set(stats_pyramid._shapes) == {"SELECT a FROM t"}
