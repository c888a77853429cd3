"""``c2cwsgiutils_stats_db.py``: row counts of a PostgreSQL database's tables, as gauges.

For every table of the given schemas, the number of rows (the planner's estimate for large
tables, unless ``--exact``), plus the ``(name, value)`` rows of each ``--extra`` query; sent to
statsd, pushed to a Prometheus pushgateway, or printed. A table or query that fails is reported
on stderr, the others still go out, and the exit code is 1.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from c2cwsgiutils import extras, stats

LOG = logging.getLogger("c2cwsgiutils.stats_db")
JOB = "c2cwsgiutils_stats_db"

_TABLES = """
SELECT n.nspname, c.relname, c.reltuples::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition AND n.nspname = ANY(:schemas)
ORDER BY n.nspname, c.relname
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_stats_db.py",
        description="Send the row count of every table of a PostgreSQL database (and the results of "
        "extra queries) as gauges to statsd or a Prometheus pushgateway, or print them. Exit code: "
        "0 when every count and query worked, 1 otherwise (the others are still sent), 2 for bad "
        "arguments.",
    )
    parser.add_argument(
        "--db", required=True, help="SQLAlchemy URL of the database (postgresql://user@host/db)"
    )
    parser.add_argument(
        "--schema",
        action="append",
        help="a schema whose tables are counted; repeat for several (default: public)",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        help="an SQL query returning (name, value) rows, each sent as the gauge extra.<name>; repeatable",
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="count(*) every table, even large ones (default: the planner's estimate above --estimate-above)",
    )
    parser.add_argument(
        "--estimate-above",
        "--estimate_above",
        type=int,
        default=1_000_000,
        metavar="ROWS",
        help="tables the planner estimates at more rows than this are not counted exactly (default 1000000)",
    )
    parser.add_argument(
        "--statsd-address",
        "--statsd_address",
        help="send the gauges to this statsd server (host:port or [ipv6]:port)",
    )
    parser.add_argument(
        "--statsd-prefix",
        "--statsd_prefix",
        default="gs_stats",
        help="prefix of the statsd names (default gs_stats): <prefix>.rows.<schema>.<table>",
    )
    parser.add_argument(
        "--prometheus-url",
        "--prometheus_url",
        help="push the gauges to this Prometheus pushgateway (http://pushgateway:9091), job " + JOB,
    )
    parser.add_argument(
        "--prometheus-instance",
        "--prometheus_instance",
        help="the pushgateway's 'instance' grouping label (default: none)",
    )
    parser.add_argument(
        "--verbosity",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default INFO)",
    )
    return parser


class _Output:
    """Where the gauges go: statsd, a pushgateway's registry, or standard output."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.statsd = (
            stats.StatsdBackend(args.statsd_address, args.statsd_prefix) if args.statsd_address else None
        )
        self.prometheus_url = args.prometheus_url
        self.instance = args.prometheus_instance
        self.rows: list[tuple[str, str, float]] = []
        self.extras: list[tuple[str, float]] = []

    def table(self, schema: str, table: str, rows: float) -> None:
        self.rows.append((schema, table, rows))
        if self.statsd is not None:
            self.statsd.gauge(("rows", schema, table), rows)
        if self.statsd is None and self.prometheus_url is None:
            print(f"rows.{schema}.{table} {rows:g}")

    def extra(self, name: str, value: float) -> None:
        self.extras.append((name, value))
        if self.statsd is not None:
            self.statsd.gauge(("extra", name), value)
        if self.statsd is None and self.prometheus_url is None:
            print(f"extra.{name} {value:g}")

    def close(self) -> bool:
        """Send what is pending; return False if it could not be sent."""
        if self.statsd is not None:
            self.statsd.close()
        if self.prometheus_url is None:
            return True
        client = extras.require("prometheus_client", "prometheus", "--prometheus-url")
        registry = client.CollectorRegistry()
        rows = client.Gauge(
            "c2cwsgiutils_table_rows",
            "Rows of a table (estimated for large ones)",
            ["schema", "table"],
            registry=registry,
        )
        for schema, table, value in self.rows:
            rows.labels(schema, table).set(value)
        extra = client.Gauge(
            "c2cwsgiutils_stats_db_extra", "Results of the extra queries", ["name"], registry=registry
        )
        for name, value in self.extras:
            extra.labels(name).set(value)
        grouping = {"instance": self.instance} if self.instance else {}
        try:
            client.push_to_gateway(self.prometheus_url, job=JOB, registry=registry, grouping_key=grouping)
        except OSError as error:
            LOG.error("cannot push to %s: %s", self.prometheus_url, error)
            return False
        return True


def _count(connection: Any, schema: str, table: str, estimate: float | None) -> float:
    if estimate is not None:
        return float(estimate)
    quote = connection.dialect.identifier_preparer.quote_identifier
    from sqlalchemy import text  # noqa: PLC0415

    return float(
        connection.execute(text(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}")).scalar_one()  # noqa: S608 (quoted identifiers)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Count, send, and say whether everything worked."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.verbosity, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sqlalchemy = extras.require("sqlalchemy", "db", "c2cwsgiutils_stats_db.py")
        if args.statsd_address:
            stats.parse_address(args.statsd_address)
    except (extras.MissingExtraError, ValueError) as error:
        print(f"c2cwsgiutils_stats_db.py: {error}", file=sys.stderr)
        return 2
    schemas = args.schema or ["public"]
    output = _Output(args)
    failures = 0
    engine = sqlalchemy.create_engine(args.db, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            tables = connection.execute(sqlalchemy.text(_TABLES), {"schemas": schemas}).all()
            for schema, table, estimate in tables:
                try:
                    large = not args.exact and estimate > args.estimate_above
                    rows = _count(connection, schema, table, estimate if large else None)
                except sqlalchemy.exc.DBAPIError as error:
                    failures += 1
                    LOG.error("cannot count the rows of %s.%s: %s", schema, table, str(error.orig).strip())
                    continue
                LOG.debug("%s.%s: %s rows", schema, table, rows)
                output.table(schema, table, rows)
            for query in args.extra:
                try:
                    results = connection.execute(sqlalchemy.text(query)).all()
                    values = [(str(name), float(value)) for name, value in results]
                except (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.ArgumentError) as error:
                    failures += 1
                    LOG.error("extra query %r failed: %s", query, str(getattr(error, "orig", error)).strip())
                    continue
                except (ValueError, TypeError) as error:
                    failures += 1
                    LOG.error("extra query %r must return (name, number) rows: %s", query, error)
                    continue
                for name, value in values:
                    output.extra(name, value)  # noqa: S610 (not Django)
    except sqlalchemy.exc.OperationalError as error:
        LOG.error("cannot connect to the database: %s", str(error.orig).strip())
        output.close()
        return 1
    finally:
        engine.dispose()
    if not output.close():
        failures += 1
    if failures:
        LOG.error("%d count(s) or query(ies) failed; the others were sent", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
