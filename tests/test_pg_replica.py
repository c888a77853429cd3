"""
Checks of the PostgreSQL streaming replica made by `scripts/pg-replica.sh`.

The script must have been run before (CI does it); these tests do not start anything.
"""

import os
import time
import uuid

import psycopg
import psycopg.errors
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

_PRIMARY_PORT = os.environ.get("PG_PRIMARY_PORT", "5432")
_REPLICA_PORT = os.environ.get("PG_REPLICA_PORT", "5433")
_PRIMARY_URL = f"postgresql://postgres@127.0.0.1:{_PRIMARY_PORT}/test"
_REPLICA_URL = f"postgresql://postgres@127.0.0.1:{_REPLICA_PORT}/test"
_REPLICATION_TIMEOUT = 10.0


def _connect(url: str, what: str) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL {what} not reachable at {url}; run `scripts/pg-replica.sh` first ({error})"
    # Outside of the except block, to not show the connection traceback.
    pytest.fail(message, pytrace=False)


def _connect_replica() -> psycopg.Connection[TupleRow]:
    return _connect(_REPLICA_URL, "replica")


def _connect_primary() -> psycopg.Connection[TupleRow]:
    return _connect(_PRIMARY_URL, "primary")


def test_replica_is_in_recovery() -> None:
    with _connect_replica() as replica:
        row = replica.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row == (True,)


def test_replica_rejects_writes_as_read_only() -> None:
    table = sql.Identifier(f"pg_replica_ro_{uuid.uuid4().hex}")
    with (
        _connect_replica() as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"),
    ):
        replica.execute(sql.SQL("CREATE TABLE {} (id integer)").format(table))


def test_row_written_on_primary_becomes_visible_on_replica() -> None:
    table = sql.Identifier(f"pg_replica_test_{uuid.uuid4().hex}")
    value = uuid.uuid4().hex
    with _connect_primary() as primary, _connect_replica() as replica:
        try:
            primary.execute(sql.SQL("CREATE TABLE {} (value text NOT NULL)").format(table))
            primary.execute(sql.SQL("INSERT INTO {} (value) VALUES (%s)").format(table), (value,))

            deadline = time.monotonic() + _REPLICATION_TIMEOUT
            rows: list[TupleRow] = []
            while True:
                try:
                    rows = replica.execute(sql.SQL("SELECT value FROM {}").format(table)).fetchall()
                except psycopg.errors.UndefinedTable:
                    rows = []  # the CREATE TABLE is not replayed yet
                if rows or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert rows == [(value,)], f"row not replicated within {_REPLICATION_TIMEOUT} s"
        finally:
            primary.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
