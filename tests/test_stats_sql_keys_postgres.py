"""SQL metric keys on the local PostgreSQL: the ORM's statements keep the original c2cwsgiutils' keys.

In this process (the in-memory backend and statsd to an in-process UDP receiver), then in every
backend of a real server under c2cwsgiutils_run (stats.json, statsd and Prometheus' ``query``
label). How a statement is keyed, without a database: tests/unit/test_stats_sql_keys.py.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy.orm import Session

from c2cwsgiutils import stats, stats_pyramid
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.udp import UdpReceiver
from c2cwsgiutils.acceptance.utils import wait_until
from testing.fixtures import StartServer
from tests.apps import sql_keys as sql_keys_app

REPO = Path(__file__).parent.parent
ORIGINAL_KEYS = {
    "SELECT FROM hello LIMIT ?",
    "INSERT INTO hello",
    "UPDATE hello SET WHERE hello.id = ?",
    "SELECT FROM hello WHERE hello.id IN (?)",
}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    stats_pyramid.reset()
    yield
    stats_pyramid.reset()


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A schema of the test's own on the local PostgreSQL, dropped after."""
    name = f"sql_keys_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {name} CASCADE")


def run_statements(postgres_url: str, schema: str) -> None:
    """What the test app's view does, in this process."""
    sql_keys_app.create_table(postgres_url, schema)
    engine = sql_keys_app.make_engine(postgres_url, schema)
    try:
        with Session(engine) as session:
            session.query(sql_keys_app.Hello).limit(2).all()
            hello = sql_keys_app.Hello(value="new")
            session.add(hello)
            session.flush()
            hello.value = "changed"
            session.flush()
            session.query(sql_keys_app.Hello).filter(sql_keys_app.Hello.id.in_([hello.id, 0, -1])).all()
            session.commit()
    finally:
        engine.dispose()


def test_orm_statements_on_postgresql_have_the_original_keys(postgres_url: str, schema: str) -> None:
    memory = stats.MemoryBackend()
    stats.add_backend(memory)
    assert stats_pyramid.init_db_spy()
    run_statements(postgres_url, schema)
    timers = stats.merge([memory.dump()])["timers"]
    assert {f"sql/{key}" for key in ORIGINAL_KEYS} <= set(timers)


def test_statsd_names_of_sql_keys_are_the_originals(
    postgres_url: str, schema: str, udp_receiver: UdpReceiver
) -> None:
    """The original's name: ``.``, ``:`` and ``|`` as ``_``, the rest left for the statsd server."""
    backend = stats.StatsdBackend(udp_receiver.address, "app", flush_interval=60)
    stats.add_backend(backend)
    assert stats_pyramid.init_db_spy()
    run_statements(postgres_url, schema)
    backend.flush()
    names = {key.replace(".", "_") for key in ORIGINAL_KEYS}

    def sent() -> set[str]:
        lines = [line for data in udp_receiver.received() for line in data.decode().split("\n")]
        found = {line.split(":", 1)[0].removeprefix("app.sql.") for line in lines}
        return names & found

    assert wait_until(lambda: sent() == names, what="the SQL timers over statsd", timeout=10)


@pytest.fixture
def start_sql_app(
    start_server: StartServer, tmp_path: Path, postgres_url: str, schema: str
) -> Callable[..., AppServer]:
    def start(env: dict[str, str]) -> AppServer:
        ini = tmp_path / "sql_keys.ini"
        settings = f"sqlalchemy.url = {postgres_url}\nsql_keys.schema = {schema}"
        ini.write_text(sql_keys_app.INI.format(settings=settings), encoding="utf-8")
        sql_keys_app.create_table(postgres_url, schema)
        return start_server(env={"PYTHONPATH": str(REPO), **env}, config_file=ini, workers=2)

    return start


def test_every_backend_of_a_real_server_has_the_original_keys(
    start_sql_app: Callable[..., AppServer], udp_receiver: UdpReceiver
) -> None:
    server = start_sql_app(
        {
            "STATS_VIEW": "1",
            "STATSD_ADDRESS": udp_receiver.address,
            "STATSD_PREFIX": "app",
            "C2C_PROMETHEUS": "1",
        }
    )
    for _ in range(3):
        assert requests.get(server.url("/statements"), timeout=10).json() == {"ok": True}

    timers = requests.get(server.url("/c2c/stats.json"), timeout=10).json()["timers"]
    assert {f"sql/{key}" for key in ORIGINAL_KEYS} <= set(timers)

    statsd_names = {f"app.sql.{key.replace('.', '_')}" for key in ORIGINAL_KEYS}

    def statsd_sent() -> bool:
        lines = [line for data in udp_receiver.received() for line in data.decode().split("\n")]
        return statsd_names <= {line.split(":", 1)[0] for line in lines}

    wait_until(statsd_sent, what="the SQL timers over statsd", timeout=10)

    scrape = requests.get(server.url("/c2c/metrics"), timeout=10).text
    labels = set(
        re.findall(r'^c2cwsgiutils_sql_duration_seconds_count\{query="([^"]*)"\}', scrape, re.MULTILINE)
    )
    assert labels >= ORIGINAL_KEYS
