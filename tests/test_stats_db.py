"""c2cwsgiutils_stats_db.py against the local PostgreSQL: odd names, failing queries, statsd, pushgateway."""

import http.server
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from c2cwsgiutils.acceptance.udp import UdpReceiver
from testing.fixtures import RunScript


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A schema of its own with a mixed-case table of 3 rows and a table with a quote in its name."""
    name = f"Stats {uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
        connection.execute(f'CREATE TABLE "{name}"."MixedCase" (id int)')
        connection.execute(f'INSERT INTO "{name}"."MixedCase" VALUES (1), (2), (3)')  # noqa: S608
        connection.execute(f'CREATE TABLE "{name}"."odd "" name" (id int)')
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_counts_are_printed_and_a_failing_extra_query_fails_the_run(
    run_script: RunScript, postgres_url: str, schema: str
) -> None:
    result = run_script(
        "c2cwsgiutils_stats_db.py",
        "--db",
        postgres_url,
        "--schema",
        schema,
        "--extra",
        "SELECT 1/0, 1",
        "--extra",
        "SELECT 'answer', 42",
    )
    assert result.returncode == 1, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(
        [f"rows.{schema}.MixedCase 3", f'rows.{schema}.odd " name 0', "extra.answer 42"]
    )
    assert "division by zero" in result.stderr


def test_the_dashed_alias_sends_to_statsd(
    run_script: RunScript, postgres_url: str, schema: str, udp_receiver: UdpReceiver
) -> None:
    result = run_script(
        "c2cwsgiutils-stats-db",
        "--db",
        postgres_url,
        "--schema",
        schema,
        "--statsd-address",
        udp_receiver.address,
        "--statsd_prefix",
        "db",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    datagram = udp_receiver.wait_for(lambda data: b"MixedCase" in data)
    # The name as the original sent it: only ".", ":" and "|" in a part are "_" (the space stays).
    assert f"db.rows.{schema}.MixedCase:3|g".encode() in datagram.split(b"\n")


def test_pushes_to_a_prometheus_pushgateway(run_script: RunScript, postgres_url: str, schema: str) -> None:
    received: list[tuple[str, str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    with http.server.HTTPServer(("127.0.0.1", 0), Gateway) as gateway:
        thread = threading.Thread(target=gateway.serve_forever, daemon=True)
        thread.start()
        result = run_script(
            "c2cwsgiutils_stats_db.py",
            "--db",
            postgres_url,
            "--schema",
            schema,
            "--prometheus_url",
            f"http://127.0.0.1:{gateway.server_address[1]}",
            "--prometheus_instance",
            "db1",
        )
        gateway.shutdown()
    assert result.returncode == 0, result.stderr
    ((method, path, body),) = received
    assert (method, path) == ("PUT", "/metrics/job/c2cwsgiutils_stats_db/instance/db1")
    assert f'c2cwsgiutils_table_rows{{schema="{schema}",table="MixedCase"}} 3.0'.encode() in body


def test_help_explains_every_option(run_script: RunScript) -> None:
    result = run_script("c2cwsgiutils_stats_db.py", "--help")
    assert result.returncode == 0
    for option in ("--db", "--schema", "--extra", "--exact", "--statsd_address", "--statsd_prefix"):
        assert option in result.stdout
    for option in ("--prometheus_url", "--prometheus_instance", "--verbosity"):
        assert option in result.stdout
