"""Instructions per request, counted by valgrind: bare Pyramid against the toolkit with each feature.

Wall-clock figures on a shared 2-CPU virtual machine move by ±10 µs from one run to the next
(bare Pyramid's ping measured 14 to 33 µs within the same hour), more than the toolkit adds.
``valgrind --tool=callgrind`` counts the instructions the process executes instead: the same
count on every run, whatever else the machine does. Each case runs twice under callgrind, with 0
and with ``--calls`` requests after the same warm-up, and the difference divided by ``--calls`` is
the cost of one request. "µs at 14" converts it at the speed bare Pyramid's ping ran on a quiet
machine (14 µs), to compare with the budgets: a rough guide, since instructions are not all equal.

Run ``python bench/instructions.py`` (needs valgrind; ``make bench-instructions``).
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).parent
QUIET_PING_US = 14.0
# (name, toolkit included, extra settings)
CASES: list[tuple[str, bool, dict[str, str]]] = [
    ("bare Pyramid", False, {}),
    ("toolkit, defaults", True, {}),
    ("+ statsd", True, {"c2c.statsd_address": "SINK"}),
    ("+ stats.json (memory)", True, {"c2c.stats_view": "true"}),
    ("+ Prometheus", True, {"c2c.prometheus": "true"}),
    (
        "everything on",
        True,
        {
            "c2c.statsd_address": "SINK",
            "c2c.stats_view": "true",
            "c2c.prometheus": "true",
            "c2c.log_view_secret": "bench-secret-0123456789",
            "c2c.debug_view_secret": "bench-secret-0123456789",
            "c2c.sql_profiler_secret": "bench-secret-0123456789",
        },
    ),
]


def serve(case: int, calls: int) -> None:
    """Build the case's app and call it ``calls`` times (the part run under valgrind)."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prometheus-"))
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(HERE))
    import foundation  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    import harness  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    from pyramid.config import Configurator  # noqa: PLC0415

    import c2cwsgiutils.pyramid  # noqa: PLC0415

    with harness.udp_sink() as statsd:
        _, toolkit, extra = CASES[case]
        settings = {key: value.replace("SINK", statsd) for key, value in extra.items()}
        config = Configurator(settings={**foundation.SETTINGS, **settings})
        if toolkit:
            config.include(c2cwsgiutils.pyramid.includeme)
        config.add_route("ping", "/api/ping")
        config.add_view(foundation.ping, route_name="ping", request_method="GET")
        app = config.make_wsgi_app()
        foundation.time_calls(app, foundation.TEMPLATE, 300)
        if calls:
            foundation.time_calls(app, foundation.TEMPLATE, calls)


def instructions(case: int, calls: int) -> int:
    """Return the instructions a whole run of the case executes."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--serve",
        str(case),
        "--calls",
        str(calls),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="requests per measured run (default 2000)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--case", action="append", help="only these cases (by name; bare Pyramid is always measured)"
    )
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.calls)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 1
    # The runs are independent (and mostly Python's start-up): two at a time, one per CPU.
    wanted = [
        index for index, (name, _, _) in enumerate(CASES) if index == 0 or not args.case or name in args.case
    ]
    runs = [(index, calls) for index in wanted for calls in (0, args.calls)]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counts = dict(zip(runs, pool.map(lambda run: instructions(*run), runs), strict=True))
    print(f"{'GET /api/ping':<24}{'instructions':>13}{'added':>9}{'ratio':>7}{'µs at 14':>10}")
    bare = 0
    for index in wanted:
        name = CASES[index][0]
        per_request = (counts[index, args.calls] - counts[index, 0]) // args.calls
        bare = bare or per_request
        added = per_request - bare
        microseconds = QUIET_PING_US * added / bare
        print(f"{name:<24}{per_request:>13,}{added:>9,}{per_request / bare:>7.2f}{microseconds:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
