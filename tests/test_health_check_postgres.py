"""c2cwsgiutils.health_check's database and alembic checks, in-process against the local PostgreSQL.

The alembic checks run the example app's migration (the alembic command) on a database of their
own. The report's shape, in-process without a service: tests/unit/test_health_check.py.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import webtest
from pyramid.config import Configurator

from c2cwsgiutils.db import setup_session
from c2cwsgiutils.health_check import HealthCheck
from tests.apps.health_check import dispose_engines, make_app

REPO = Path(__file__).parent.parent
APP_DIR = REPO / "acceptance_tests" / "app"


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()


# What a failure tells a client in production: no URL, no SQL, no parameters.


def test_a_failing_db_check_shows_the_driver_s_first_line_only(postgres_url: str) -> None:
    def query(session: Any) -> None:
        from sqlalchemy import text

        session.execute(text("SELECT * FROM no_such_table_c2c WHERE secret = :value"), {"value": "p4ss"})

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, query_cb=query)

    app = make_app(setup, **{"sqlalchemy.url": postgres_url})
    message = app.get("/c2c/health_check", status=500).json["failures"]["db_engine_sqlalchemy"]["message"]
    assert message == 'relation "no_such_table_c2c" does not exist'
    development = make_app(setup, **{"sqlalchemy.url": postgres_url, "c2c.development": "true"})
    detail = development.get("/c2c/health_check", status=500).json["failures"]["db_engine_sqlalchemy"]
    assert "[SQL:" in detail["message"]


# Alembic, with the example app's migration.


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    name = f"health_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def upgrade(url: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-c", str(APP_DIR / "alembic.ini"), "upgrade", "head"],
        env={**os.environ, "SQLALCHEMY_URL": url},
        check=True,
        capture_output=True,
        timeout=60,
    )


def alembic_app(url: str, ini_path: str) -> webtest.TestApp:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_alembic_check(session, ini_path)

    return make_app(setup, **{"sqlalchemy.url": url})


def test_alembic_check_fails_before_the_migration_and_passes_after(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(APP_DIR)
    app = alembic_app(fresh_database, "alembic.ini")  # relative to the current directory
    before = app.get("/c2c/health_check?max_level=2", status=500).json
    assert before["failures"]["alembic_alembic.ini"]["message"] == (
        "sqlalchemy is at revision none, the scripts' head is 0001_hello"
    )
    upgrade(fresh_database)
    after = app.get("/c2c/health_check?max_level=2").json
    assert after == {"status": 200, "successes": ["alembic_alembic.ini"], "failures": {}}


def test_alembic_check_is_level_2_and_named_after_its_path(fresh_database: str) -> None:
    upgrade(fresh_database)
    app = alembic_app(fresh_database, str(APP_DIR / "alembic.ini"))
    name = "alembic_" + str(APP_DIR / "alembic.ini").replace("/", "_").strip("_")
    assert app.get("/c2c/health_check").json["successes"] == []
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == [name]


def test_alembic_check_reads_the_section_it_is_named_after(fresh_database: str, tmp_path: Path) -> None:
    """Upstream 6.1's ``name=``, as c2cgeoportal calls it: one file, a section per migration."""
    upgrade(fresh_database)  # into alembic_version, the table the [main] section names by default
    ini = tmp_path / "alembic.ini"
    scripts = APP_DIR / "alembic"
    ini.write_text(
        f"[main]\nscript_location = {scripts}\n\n"
        f"[static]\nscript_location = {scripts}\nversion_table = static_version\n",
        encoding="utf-8",
    )

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_alembic_check(session, alembic_ini_path=str(ini), name="main", level=1)
        health_check.add_alembic_check(session, alembic_ini_path=str(ini), name="static", level=1)

    report = make_app(setup, **{"sqlalchemy.url": fresh_database}).get("/c2c/health_check", status=500).json
    path = str(ini).replace("/", "_").strip("_")
    assert report["successes"] == [f"alembic_{path}_main"]
    assert report["failures"][f"alembic_{path}_static"]["message"] == (
        "sqlalchemy is at revision none, the scripts' head is 0001_hello"
    )


def test_alembic_check_needs_an_existing_file(postgres_url: str) -> None:
    with pytest.raises(FileNotFoundError):
        alembic_app(postgres_url, "/no/such/alembic.ini")


def test_db_check_with_a_model_fails_on_an_empty_table(fresh_database: str) -> None:
    from c2cwsgiutils_app import models

    upgrade(fresh_database)

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, at_least_one_model=models.Hello)

    app = make_app(setup, **{"sqlalchemy.url": fresh_database})
    answer = app.get("/c2c/health_check", status=500).json
    assert answer["failures"] == {"db_engine_sqlalchemy": {"message": "the table hello has no row"}}
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute("INSERT INTO hello (value) VALUES ('hi')")
    assert app.get("/c2c/health_check").json["successes"] == ["db_engine_sqlalchemy"]


def test_db_check_with_a_query_cb(postgres_url: str) -> None:
    seen: list[Any] = []

    def setup(health_check: HealthCheck, config: Configurator) -> None:
        session = setup_session(config, "sqlalchemy")[0]
        health_check.add_db_session_check(session, query_cb=seen.append, level=1)

    make_app(setup, **{"sqlalchemy.url": postgres_url}).get("/c2c/health_check")
    assert len(seen) == 1
