"""
Checks of the PostgreSQL streaming replica made by `scripts/pg-replica.sh`.

The script must have been run before (`make test` does it); the fixtures fail, naming it, when the
replica does not answer.
"""

import time
import uuid

import psycopg
import psycopg.errors
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

pytestmark = [pytest.mark.postgres, pytest.mark.replica]

_REPLICATION_TIMEOUT = 10.0


def connect(url: str) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def test_replica_is_in_recovery(postgres_replica_url: str) -> None:
    with connect(postgres_replica_url) as replica:
        row = replica.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row == (True,)


def test_replica_rejects_writes_as_read_only(postgres_replica_url: str) -> None:
    table = sql.Identifier(f"pg_replica_ro_{uuid.uuid4().hex}")
    with (
        connect(postgres_replica_url) as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"),
    ):
        replica.execute(sql.SQL("CREATE TABLE {} (id integer)").format(table))


def test_row_written_on_primary_becomes_visible_on_replica(
    postgres_url: str, postgres_replica_url: str
) -> None:
    table = sql.Identifier(f"pg_replica_test_{uuid.uuid4().hex}")
    value = uuid.uuid4().hex
    with connect(postgres_url) as primary, connect(postgres_replica_url) as replica:
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
