"""The JSON errors of a real PostgreSQL's IntegrityError, in production and in development."""

import uuid
from typing import Any, NoReturn

import pytest
import sqlalchemy
from pyramid.request import Request

from tests.apps import make_app


def postgres_integrity_error(url: str) -> Any:
    def view(request: Request) -> NoReturn:
        engine = sqlalchemy.create_engine(url)
        table = f"t_{uuid.uuid4().hex}"
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"CREATE TEMP TABLE {table} (v TEXT CONSTRAINT {table}_v UNIQUE)")
                for _ in range(2):
                    connection.exec_driver_sql(f"INSERT INTO {table} VALUES ('row-value-secret')")  # noqa: S608
        finally:
            engine.dispose()
        raise AssertionError("unreachable")

    return view


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg2"])
def test_integrity_error_in_production_is_the_first_line_only(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    monkeypatch.delenv("DEVELOPMENT", raising=False)
    url = postgres_url.replace("postgresql", driver, 1)
    body = make_app({"dup": postgres_integrity_error(url)}).get("/dup", status=400).json
    assert body["message"].startswith("duplicate key value violates unique constraint")
    assert "row-value-secret" not in str(body)
    assert "DETAIL" not in str(body)
    assert set(body) == {"status", "message", "request_id"}


def test_integrity_error_in_development_has_the_detail_and_table(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVELOPMENT", "1")
    body = make_app({"dup": postgres_integrity_error(postgres_url)}).get("/dup", status=400).json
    assert "row-value-secret" in body["detail"]
    assert body["table"].startswith("t_")
    assert body["constraint"].endswith("_v")
