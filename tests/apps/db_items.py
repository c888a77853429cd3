"""The table of the database tests: a model, made on the local primary and replayed on its replica.

The replica refuses writes ("read-only transaction") and answers ``pg_is_in_recovery()`` with
true: that is how the tests see which server a statement reached.
"""

import time
import uuid

import psycopg
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

TABLE = "c2c_db_test_item"


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = TABLE
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(sqlalchemy.String(200), unique=True)


def create_table(primary_url: str, replica_url: str) -> str:
    """Create the table on the primary if missing, and wait until the replica has it."""
    engine = sqlalchemy.create_engine(primary_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    deadline = time.monotonic() + 10
    with psycopg.connect(replica_url, autocommit=True) as replica:
        while replica.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone() == (None,):
            assert time.monotonic() < deadline, "the table did not reach the replica"
            time.sleep(0.05)
    return TABLE


def unique() -> str:
    """Return a value no other test uses."""
    return f"v-{uuid.uuid4().hex}"


def primary_has(primary_url: str, value: str) -> bool:
    """Say whether the primary has the value (committed)."""
    with psycopg.connect(primary_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM c2c_db_test_item WHERE value = %s", (value,)
        ).fetchone()
    return row == (1,)


def in_recovery(session: Session) -> bool:
    """Say whether the session's next read reaches the replica."""
    return bool(session.scalar(select(func.pg_is_in_recovery())))
