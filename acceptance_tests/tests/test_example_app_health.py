"""The example app's health checks (docs/health-checks.md), on a database migrated by its alembic.

It runs under c2cwsgiutils_run (a process composition of its own): the alembic check's name is the
path of the ini file on this machine.
"""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from c2cwsgiutils.acceptance.composition import ProcessComposition
from c2cwsgiutils.acceptance.connection import Connection
from testing.fixtures import EXAMPLE_APP_INI

APP_DIR = EXAMPLE_APP_INI.parent
ALEMBIC = Path(sys.executable).parent / "alembic"
ALEMBIC_CHECK = "alembic_" + str(APP_DIR / "alembic.ini").replace("/", "_").strip("_")


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    """A fresh database, migrated to the head of the example app's alembic scripts."""
    name = f"example_health_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        subprocess.run(
            [str(ALEMBIC), "-c", str(APP_DIR / "alembic.ini"), "upgrade", "head"],
            env={"SQLALCHEMY_URL": url, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def app(database: str) -> Iterator[Connection]:
    """A connection to the app on the migrated database."""
    with (
        ProcessComposition(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": database}) as composition,
        Connection(composition.base_url) as connection,
    ):
        yield connection


def test_level_1_is_the_url_check_of_its_own_ping(app: Connection) -> None:
    assert app.get_json("/c2c/health_check") == {"status": 200, "successes": ["ping"], "failures": {}}


def test_every_check_passes_at_level_3_once_a_row_exists(app: Connection) -> None:
    app.post_json("/api/hello", json={"value": f"health-{uuid.uuid4()}"}, expected_status=201)
    response = app.get_raw("/c2c/health_check?max_level=3")
    assert response.json() == {
        "status": 200,
        "successes": ["ping", "db_engine_sqlalchemy", "custom", ALEMBIC_CHECK],
        "failures": {},
    }
    assert "Server-Timing" in response.headers


def test_a_failing_check_is_reported_as_the_spec_shows(app: Connection) -> None:
    body = app.get_json("/c2c/health_check?max_level=3&unhappy=1", expected_status=500)
    assert body["failures"] == {"custom": {"message": "I'm not happy"}}
    assert set(body) == {"status", "successes", "failures"}


def test_liveness(app: Connection) -> None:
    assert app.get_json("/c2c/health", cache_allowed=False) == {"status": 200}
