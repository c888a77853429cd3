"""The legacy app's behaviour, tested as the original's suites tested their apps.

Every call is one the original's ``Connection`` took: positional ``expected_status``, ``data`` as
the second argument of ``post_json``, ``params`` and ``headers`` by keyword.
"""

import uuid

import psycopg
import requests

from acceptance_tests.tests_legacy.legacy import ORIGIN, Dependency
from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.composition import BaseComposition
from c2cwsgiutils.acceptance.connection import Connection

REPLICA_DELAY = 10
"""Seconds the replica may take to show a row committed on the primary."""


def new_value() -> str:
    return f"legacy-{uuid.uuid4().hex}"


def stored(postgres_url: str, *values: str) -> list[str]:
    """Return which of ``values`` the primary holds."""
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT value FROM legacy_hello WHERE value = ANY(%s)", (list(values),))
        return sorted(row[0] for row in rows)


def found_by_a_new_connection(legacy: BaseComposition, value: str) -> None:
    """Wait until a new connection reads ``value`` back (a GET: from the replica)."""
    reader = Connection(legacy.base_url + "/", ORIGIN)
    utils.retry_timeout(
        lambda: reader.get_json("api/hello", params={"value": value})["found"] == 1, timeout=REPLICA_DELAY
    )


def test_post_is_committed_and_read_back_from_a_new_connection(
    app_connection: Connection, legacy: BaseComposition
) -> None:
    value = new_value()
    assert app_connection.post_json("api/hello", {"value": value}) == {"values": [value]}
    found_by_a_new_connection(legacy, value)


def test_get_forced_to_the_primary_writes_and_is_read_back(
    app_connection: Connection, legacy: BaseComposition
) -> None:
    value = new_value()
    answer = app_connection.get_json("api/hello/forced", params={"value": value})
    assert answer == {"value": value, "in_recovery": False}
    found_by_a_new_connection(legacy, value)


def test_post_forced_to_the_replica_reads_there(app_connection: Connection) -> None:
    answer = app_connection.post_json("api/hello/search", {"value": new_value()})
    assert (answer["found"], answer["in_recovery"]) == (0, True)


def test_duplicate_answers_400_and_stores_nothing(app_connection: Connection, postgres_url: str) -> None:
    kept, new = new_value(), new_value()
    app_connection.post_json("api/hello", {"value": kept})
    app_connection.post_json("api/hello", json={"value": [new, kept]}, expected_status=400)
    assert stored(postgres_url, kept, new) == [kept]


def test_get_is_timed_by_the_timer_context(app_connection: Connection) -> None:
    app_connection.get_json("api/hello", params={"value": new_value()})
    assert app_connection.get_json("c2c/stats.json")["timers"]["legacy/hello/count"]["nb"] >= 1


def test_health_check_passes_every_check(app_connection: Connection, dependency: str) -> None:
    app_connection.post_json("api/hello", {"value": new_value()})  # at_least_one_model
    answer = app_connection.get_json("c2c/health_check", params={"max_level": "2"})
    assert (answer["status"], answer["failures"]) == (200, {})
    assert set(answer["successes"]) == {
        "db_engine_sqlalchemy",
        "db_engine_sqlalchemy_slave",
        dependency,
        "custom",
    }


def test_url_check_fails_on_an_error_status_despite_its_check_cb(
    app_connection: Connection, dependency: str
) -> None:
    """The dependency answers 503 with a body its check_cb accepts: the status alone fails it."""
    Dependency.status = 503
    try:
        answer = app_connection.get_json("c2c/health_check", 500)
    finally:
        Dependency.status = 200
    assert answer["status"] == 500
    assert list(answer["failures"]) == [dependency]


def test_cornice_service_answers_with_credentials_for_the_origin(app_connection: Connection) -> None:
    assert app_connection.get_json("hello", 200) == {"hello": True}
    response = app_connection.get_raw("hello", 200, headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_cornice_service_answers_a_preflight(legacy: BaseComposition) -> None:
    preflight = requests.options(
        legacy.url("/hello"),
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
