"""The example app's health checks (README, "Health checks"), on a database migrated by its alembic."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from tests.fixtures import EXAMPLE_APP_INI

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
def app(database: str) -> Iterator[AppServer]:
    with AppServer(EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": database}) as server:
        yield server


def health(app: AppServer, query: str) -> requests.Response:
    return requests.get(app.url(f"/c2c/health_check{query}"), timeout=30)


def test_level_1_is_the_url_check_of_its_own_ping(app: AppServer) -> None:
    response = health(app, "")
    assert response.status_code == 200
    assert response.json() == {"status": 200, "successes": ["ping"], "failures": {}}


def test_every_check_passes_at_level_3_once_a_row_exists(app: AppServer) -> None:
    requests.post(app.url("/api/hello"), json={"value": f"health-{uuid.uuid4()}"}, timeout=10)
    response = health(app, "?max_level=3")
    assert response.json() == {
        "status": 200,
        "successes": ["ping", "db_engine_sqlalchemy", "custom", ALEMBIC_CHECK],
        "failures": {},
    }
    assert "Server-Timing" in response.headers


def test_a_failing_check_is_reported_as_the_spec_shows(app: AppServer) -> None:
    response = health(app, "?max_level=3&unhappy=1")
    assert response.status_code == 500
    body = response.json()
    assert body["failures"] == {"custom": {"message": "I'm not happy"}}
    assert set(body) == {"status", "successes", "failures"}


def test_liveness(app: AppServer) -> None:
    response = requests.get(app.url("/c2c/health"), timeout=10)
    assert response.json() == {"status": 200}
