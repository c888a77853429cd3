"""What the whole toolkit costs a service, against bare Pyramid measured in the same run.

``make bench`` (``python bench/run.py``) measures, each time as a baseline and a candidate in
alternating rounds (bench/harness.py):

1. throughput under gunicorn (1 worker x 4 threads, ``wrk`` on loopback): bare Pyramid's hello
   under plain ``gunicorn`` against the same app with every feature on under ``c2cwsgiutils_run``;
   and the same with one SQL query per request (plain SQLAlchemy against ``setup_session`` with
   SQL timers and SQL request IDs);
2. the in-process cost per request (the WSGI app called in a loop), everything on and per feature;
3. ``timer_context`` / ``increment_counter`` per backend; the JSON log handler against
   python-json-logger's formatter on the same handler;
4. the health check's wall time: five checks of 200 ms, and the same plus one that hangs;
5. a Prometheus scrape of 8 workers' multiprocess files with 50 routes;
6. start-up: from the command to the first 200, ``c2cwsgiutils_run`` against plain gunicorn;
7. the size the image adds to its base, when an image was built here with buildah.

It prints a table and writes it to bench/results.md and bench/results.json (each ratio under a
``ratio`` key). ``--fast`` makes every measurement tiny (the test suite runs it so that the
harness cannot rot; its figures mean nothing). Exit code 1 when a measurement failed to run (not
when a target is missed: the table says that).
"""

import argparse
import atexit
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import foundation  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
import harness  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
from harness import Row  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from c2cwsgiutils.acceptance.udp import UdpReceiver  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long each measurement runs."""

    rounds: int  # alternating rounds of the server measurements
    seconds: float  # of one wrk run
    micro_rounds: int  # rounds of the in-process measurements
    calls: int  # calls per round of the in-process measurements
    startups: int  # start-ups of each server
    health_calls: int
    warm_up: bool = True  # a wrk run on each server before the measured ones


FULL = Budget(rounds=6, seconds=5, micro_rounds=9, calls=10_000, startups=5, health_calls=6)
FAST = Budget(rounds=1, seconds=1, micro_rounds=2, calls=300, startups=1, health_calls=1, warm_up=False)
WORKERS, THREADS, CONNECTIONS = 1, 4, 8
SECRET = "bench-secret-0123456789"  # noqa: S105 (a secret the views ask for, not one that guards anything)


def full_environment(statsd: str) -> dict[str, str]:
    """Return the settings of "every feature on" for ``c2cwsgiutils_run``."""
    return {
        "LOG_TYPE": "json",
        "STATSD_ADDRESS": statsd,
        "STATS_VIEW": "true",
        "C2C_PROMETHEUS": "true",
        "LOG_VIEW_SECRET": SECRET,
        "DEBUG_VIEW_SECRET": SECRET,
        "SQL_PROFILER_SECRET": SECRET,
        "C2C_SQL_REQUEST_ID": "true",
    }


# 1. Throughput under gunicorn.


def _throughput(budget: Budget, sql: bool, tmp: Path) -> list[Row]:
    section = "1. throughput" + (", 1 SQL query" if sql else "")
    db_url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    ini = tmp / f"full-{sql}.ini"
    ini.write_text(harness_ini(sql), encoding="utf-8")
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(UdpReceiver())
        env = {"BENCH_DB_URL": db_url}
        # Both start at once (start-up is section 6's business).
        bare = stack.enter_context(
            harness.gunicorn("bare_sql()" if sql else "bare()", WORKERS, THREADS, env, wait=False)
        )
        full = stack.enter_context(
            harness.c2cwsgiutils_run(
                ini, WORKERS, THREADS, {**env, **full_environment(receiver.address)}, wait=False
            )
        )
        bare.wait(), full.wait()
        _check_full_server(full, receiver)
        if budget.warm_up:  # imports, connection pools, first routes
            for server in (bare, full):
                harness.wrk(server, "/hello", budget.seconds, CONNECTIONS)
        bare_runs, full_runs = harness.alternate(
            lambda: harness.wrk(bare, "/hello", budget.seconds, CONNECTIONS),
            lambda: harness.wrk(full, "/hello", budget.seconds, CONNECTIONS),
            budget.rounds,
        )
    labels = ("plain gunicorn", "c2cwsgiutils_run")

    def figure(runs: list[Any], name: str) -> float:
        return float(harness.median([getattr(run, name) for run in runs]))

    return [
        Row(
            section,
            "requests/s",
            "req/s",
            figure(bare_runs, "requests_per_second"),
            figure(full_runs, "requests_per_second"),
            *labels,
            target=None if sql else (">=", 0.95),
        ),
        Row(
            section,
            "server CPU per request",
            "µs",
            figure(bare_runs, "cpu_us_per_request"),
            figure(full_runs, "cpu_us_per_request"),
            *labels,
            note="",
        ),
        Row(
            section,
            "p50 latency",
            "ms",
            figure(bare_runs, "p50_ms"),
            figure(full_runs, "p50_ms"),
            *labels,
            compare="added",
        ),
        Row(
            section,
            "p99 latency",
            "ms",
            figure(bare_runs, "p99_ms"),
            figure(full_runs, "p99_ms"),
            *labels,
            compare="added",
        ),
    ]


def harness_ini(sql: bool) -> str:
    """Return the full app's ini file."""
    import apps  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    return str(apps.FULL_INI.format(sql="true" if sql else "false"))


def _check_full_server(server: harness.Server, receiver: UdpReceiver) -> None:
    """Make sure the candidate really has its features on: request ID, statsd, JSON access log."""
    response = requests.get(server.url("/hello"), timeout=10)
    if "X-Request-ID" not in response.headers or "Server-Timing" not in response.headers:
        raise RuntimeError(f"the full app misses its features: {dict(response.headers)}")
    if requests.get(server.url("/c2c/metrics"), timeout=10).status_code != 200:
        raise RuntimeError("the full app has no /c2c/metrics")
    receiver.wait_for(lambda datagram: b"hello" in datagram, timeout=10)
    deadline = time.monotonic() + 10
    while '"status":200' not in server.log().replace(" ", ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no JSON access record in the full app's output:\n{server.log()[-2000:]}")
        time.sleep(0.05)


def throughput(budget: Budget, tmp: Path) -> list[Row]:
    """Section 1: hello, then one query per request."""
    return _throughput(budget, False, tmp) + _throughput(budget, True, tmp)


# 2. In-process cost per request.


def in_process(budget: Budget, tmp: Path) -> list[Row]:
    """Section 2: the WSGI app in a loop, bare Pyramid against the toolkit with each feature."""
    del tmp
    import stats as stats_bench  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    with harness.udp_sink() as statsd:
        ops = {
            "c2c.log_view_secret": SECRET,
            "c2c.debug_view_secret": SECRET,
            "c2c.sql_profiler_secret": SECRET,
        }
        everything = {
            "c2c.statsd_address": statsd,
            "c2c.stats_view": "true",
            "c2c.prometheus": "true",
            **ops,
        }
        cases: list[tuple[str, dict[str, str], tuple[str, float] | None]] = [
            ("everything on", everything, ("<=", 25.0)),
            ("request IDs, JSON errors (defaults)", {}, None),
            ("+ ops views", ops, None),
            ("+ statsd", {"c2c.statsd_address": statsd}, None),
            ("+ in-memory stats", {"c2c.stats_view": "true"}, None),
            ("+ Prometheus", {"c2c.prometheus": "true"}, None),
        ]
        rows = []
        for name, settings, target in cases:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                # The candidate is built last: the metrics backends are process-wide, and the
                # bare app, without the toolkit's tween, does not use them.
                bare = foundation.make_app(toolkit=False)
                candidate = stats_bench.make_app(settings)
            for app, toolkit in ((bare, False), (candidate, True)):
                foundation.check(app, foundation.TEMPLATE, "200 OK", foundation.JSON, toolkit)
            base_us, candidate_us = foundation.measure(
                (bare, candidate), foundation.TEMPLATE, budget.micro_rounds, budget.calls
            )
            rows.append(
                Row(
                    "2. in-process, GET /api/ping",
                    name,
                    "µs",
                    base_us,
                    candidate_us,
                    "bare Pyramid",
                    "toolkit",
                    compare="added",
                    target=target,
                )
            )
    return rows


# 3. API costs.


def api_costs(budget: Budget, tmp: Path) -> list[Row]:
    """Section 3: ``timer_context``/``increment_counter`` per backend; JSON handler records/s."""
    del tmp
    import stats as stats_bench  # noqa: PLC0415

    from c2cwsgiutils import stats_pyramid  # noqa: PLC0415

    rows = []
    calls = budget.calls * 5
    with harness.udp_sink() as statsd:
        for backend, settings in stats_bench.backends(statsd).items():
            stats_bench.make_app(settings)
            for function, name in (
                (stats_bench.one_timer, "timer_context"),
                (stats_bench.one_counter, "increment_counter"),
            ):
                stats_bench.time_loop(function, calls // 10)
                base, candidate = harness.alternate(
                    lambda: stats_bench.time_loop(stats_bench.bare, calls),
                    lambda function=function: stats_bench.time_loop(function, calls),
                    budget.micro_rounds,
                )
                target = ("<=", 5.0) if (backend, name) == ("statsd", "timer_context") else None
                rows.append(
                    Row(
                        "3. API",
                        f"{name}, {backend}",
                        "µs",
                        harness.median(base),
                        harness.median(candidate),
                        "a bare call",
                        "",
                        compare="value",
                        target=target,
                    )
                )
        stats_pyramid.reset()
    rows.append(_json_handler(budget))
    return rows


def stack_devnull() -> Any:
    """Return /dev/null opened for writing text, closed at exit."""
    null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (kept for the process)
    atexit.register(null.close)
    return null


def _json_handler(budget: Budget) -> Row:
    import logging_json  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    from c2cwsgiutils.pyramid_logging import JsonLogHandler  # noqa: PLC0415

    # Both write to /dev/null: the handlers' cost, not the disk's.
    null = stack_devnull()
    ours = JsonLogHandler(null)
    theirs = logging.StreamHandler(null)
    theirs.setFormatter(logging_json.PythonJsonFormatter(logging_json.PYTHON_JSON_FORMAT))
    batch = logging_json.records()
    loops = max(budget.calls // 10, 20)

    def rate(handler: logging.Handler) -> float:
        return float(logging_json.per_second(handler.handle, batch, loops))

    rate(ours), rate(theirs)
    base, candidate = harness.alternate(lambda: rate(theirs), lambda: rate(ours), budget.micro_rounds)
    return Row(
        "3. API",
        "JSON log handler (3 kinds of records)",
        "records/s",
        harness.median(base),
        harness.median(candidate),
        "python-json-logger",
        "JsonLogHandler",
        target=(">=", 2.0),
    )


# 4. Health check.


def health(budget: Budget, tmp: Path) -> list[Row]:
    """Section 4: the wall time of the health check, its checks run concurrently."""
    import health_check  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    from c2cwsgiutils.acceptance.server import AppServer  # noqa: PLC0415
    from testing import health_check_app  # noqa: PLC0415

    ini = tmp / "health.ini"
    ini.write_text(
        health_check_app.INI.format(settings="health.sleepers = 5\nhealth.hang = true"), encoding="utf-8"
    )
    five = ",".join(f"sleep_{index}" for index in range(5))
    urls = {"one": "/c2c/health_check?checks=sleep_0", "five": f"/c2c/health_check?checks={five}"}
    urls["hang"] = f"/c2c/health_check?checks={five},hang"
    with (
        AppServer(ini, env={"PYTHONPATH": str(HERE.parent)}, workers=2) as server,
        requests.Session() as session,
    ):

        def wall(name: str, status: int = 200) -> float:
            return float(health_check.timings(session, server.url(urls[name]), 1, status)[0])

        for _ in range(2):  # both workers
            wall("five")
        one, five_checks = harness.alternate(lambda: wall("one"), lambda: wall("five"), budget.health_calls)
        # The first request waits for the hanging check's timeout; the next ones, while it still
        # hangs, do not start it again and answer at once that it timed out.
        hang = [wall("hang", 500) for _ in range(max(budget.health_calls // 2, 2))]
    section = "4. health check"
    return [
        Row(section, "5 checks of 200 ms", "ms", harness.median(one), harness.median(five_checks),
            "1 check", "5 checks", compare="value", target=("<=", 300.0)),
        Row(section, "5 checks + 1 hanging (1 s timeout), first request", "ms",
            harness.median(five_checks), hang[0], "5 checks", "+ hanging", compare="value",
            target=("<=", 1300.0)),
        Row(section, "5 checks + 1 hanging, while it still hangs", "ms", harness.median(five_checks),
            harness.median(hang[1:]), "5 checks", "+ hanging", compare="value", target=("<=", 300.0)),
    ]  # fmt: skip


# 5. Prometheus scrape.

ROUTES = 50
SCRAPE_WORKERS = 8


def scrape(budget: Budget, tmp: Path) -> list[Row]:
    """Section 5: a scrape of 8 workers' multiprocess files, each with 50 routes' histograms."""
    directory = tmp / "prometheus"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    output = harness.python_child(__file__, "--prometheus-scrape", str(budget.micro_rounds), env=env)
    result = json.loads(output)
    return [
        Row(
            "5. Prometheus scrape",
            f"{SCRAPE_WORKERS} workers x {ROUTES} routes ({result['samples']:,} samples)",
            "ms",
            result["prometheus_client"],
            result["c2cwsgiutils"],
            "prometheus_client alone",
            "/c2c/metrics",
            compare="value",
            target=("<=", 100.0),
        ),
        Row(
            "5. Prometheus scrape",
            "the first one (every file's keys parsed)",
            "ms",
            result["prometheus_client"],
            result["first"],
            "prometheus_client alone",
            "/c2c/metrics, first",
            compare="value",
        ),
    ]


def _fill_as_workers() -> None:
    """Write the multiprocess files of 8 workers that each served 50 routes (one process, 8 pids).

    prometheus_client names its files by process id, read when a value is created: each "worker"
    here is a backend made while the id reads as another one.
    """
    from prometheus_client import values  # noqa: PLC0415

    from c2cwsgiutils import stats  # noqa: PLC0415
    from c2cwsgiutils.prometheus import PrometheusBackend  # noqa: PLC0415

    real = values.ValueClass
    for pid in range(1_000_001, 1_000_001 + SCRAPE_WORKERS):
        values.ValueClass = values.MultiProcessValue(process_identifier=lambda pid=pid: pid)  # type: ignore[no-untyped-call]
        backend = PrometheusBackend()
        for route in range(ROUTES):
            for method, status in (("GET", 200), ("GET", 404), ("POST", 201)):
                backend.request(method, f"route_{route}", status, 0.012, 0.003)
        for query in range(10):
            backend.sql(f"SELECT * FROM table_{query} WHERE id = ?", 0.002)  # noqa: S608 (a label, never run)
        backend.counter(stats.make_key(["bench", "counter"]), 1)
    values.ValueClass = real


def _prometheus_scrape(rounds: int) -> int:
    """Time the exposition of the multiprocess directory: prometheus_client's own, and ours."""
    import prometheus_client  # noqa: PLC0415
    from prometheus_client import multiprocess  # noqa: PLC0415

    from c2cwsgiutils.prometheus import PrometheusBackend  # noqa: PLC0415

    _fill_as_workers()
    backend = PrometheusBackend()

    def theirs() -> float:
        started = time.perf_counter()
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        prometheus_client.generate_latest(registry)
        return (time.perf_counter() - started) * 1000

    def ours() -> float:
        started = time.perf_counter()
        backend.exposition()
        return (time.perf_counter() - started) * 1000

    # The first scrape parses every file's keys; the next ones only read the values (the files are
    # append-only): a Prometheus scrapes every few seconds, so the next ones are the figure.
    first = ours()
    body = backend.exposition()[0]
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    base, candidate = harness.alternate(theirs, ours, max(rounds, 1))
    result = {
        "prometheus_client": harness.median(base),
        "c2cwsgiutils": harness.median(candidate),
        "first": first,
    }
    print(json.dumps({**result, "samples": samples}))
    return 0


# 6. Start-up.


def startup(budget: Budget, tmp: Path) -> list[Row]:
    """Section 6: from the command to the first 200, plain gunicorn against c2cwsgiutils_run."""
    ini = tmp / "startup.ini"
    ini.write_text(harness_ini(False), encoding="utf-8")
    with UdpReceiver() as receiver:
        env = {"BENCH_DB_URL": "unused", **full_environment(receiver.address)}

        def plain() -> float:
            with harness.gunicorn("bare()", WORKERS, THREADS) as server:
                return float(server.startup)

        def ours() -> float:
            with harness.c2cwsgiutils_run(ini, WORKERS, THREADS, env) as server:
                return float(server.startup)

        base, candidate = harness.alternate(plain, ours, budget.startups)
    return [
        Row(
            "6. start-up",
            "command to first 200",
            "s",
            harness.median(base),
            harness.median(candidate),
            "plain gunicorn, bare app",
            "c2cwsgiutils_run, everything on",
            compare="value",
            target=("<=", 2.0),
        )
    ]


# 7. Image.


def image(budget: Budget, tmp: Path) -> list[Row]:
    """Section 7: the size the image adds to its base, from a local buildah build (never built here)."""
    del budget, tmp
    row = Row("7. image", "size added to the base", "MB", None, None, "base", "image", compare="added")
    sizes = _buildah_sizes()
    image_size = sizes.get(os.environ.get("IMAGE", "camptocamp/c2cwsgiutils:latest"))
    base_size = next((size for name, size in sizes.items() if "c2cwsgiutils-base" in name), None)
    base_size = sizes.get("debian:trixie-slim", base_size)
    if image_size is None or base_size is None:
        row.note = "not built"
        return [row]
    row.baseline, row.candidate = base_size / 1e6, image_size / 1e6
    return [row]


def _buildah_sizes() -> dict[str, int]:
    """Return the size of each image buildah knows here, by name (short and long forms)."""
    if shutil.which("buildah") is None:
        return {}
    env = {**os.environ, "STORAGE_DRIVER": os.environ.get("STORAGE_DRIVER", "vfs")}
    result = subprocess.run(
        ["buildah", "images", "--json"], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    if result.returncode != 0 or not result.stdout.strip():
        return {}
    sizes: dict[str, int] = {}
    for entry in json.loads(result.stdout):
        for name in entry.get("names") or []:
            size = _bytes(str(entry.get("size", "0")))
            sizes[name] = size
            for prefix in ("localhost/", "docker.io/library/", "docker.io/"):
                if name.startswith(prefix):
                    sizes[name.removeprefix(prefix)] = size
    return sizes


_SIZE_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _bytes(size: str) -> int:
    """Return the bytes of buildah's size text (``81.3 MB``: decimal units, 3 digits)."""
    number, _, unit = size.strip().partition(" ")
    return int(float(number) * _SIZE_UNITS.get(unit or "B", 1))


SECTIONS: dict[str, Callable[[Budget, Path], list[Row]]] = {
    "throughput": throughput,
    "in-process": in_process,
    "api": api_costs,
    "health": health,
    "scrape": scrape,
    "startup": startup,
    "image": image,
}


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """Keep the measured records off the terminal."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def main(argv: list[str] | None = None) -> int:
    """Run the sections, print the table, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fast", action="store_true", help="tiny rounds: checks the harness, not the speed")
    parser.add_argument("--only", action="append", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument(
        "--output", type=Path, default=HERE, help="where results.json/.md go (default bench/)"
    )
    parser.add_argument("--prometheus-scrape", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prometheus_scrape is not None:
        return _prometheus_scrape(args.prometheus_scrape)
    budget = FAST if args.fast else FULL
    args.output.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, _quiet_logging():
        for name in args.only or SECTIONS:
            started = time.perf_counter()
            directory = Path(tmp) / name
            directory.mkdir()
            try:
                section_rows = SECTIONS[name](budget, directory)
            except Exception as error:
                traceback.print_exc()
                failed.append(name)
                section_rows = [
                    Row(name, "failed", "", None, None, note=f"failed: {error}".splitlines()[0][:200])
                ]
            print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
            rows += section_rows
    print(harness.text_table(rows))
    harness.write_results(
        rows, args.output / "results.json", args.output / "results.md", "fast" if args.fast else "full"
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
