"""Cost of the metrics: one ``timer_context`` / ``increment_counter`` per backend, and per request.

Part 1 calls ``stats.timer_context(["bench", "timer"])`` (entered and left) and
``stats.increment_counter(["bench", "counter"])`` in a loop with each backend alone: none, the
in-memory one (``STATS_VIEW``), statsd (to a UDP socket of this process that nobody reads; the
sender thread runs as in production) and Prometheus in multiprocess mode (a temporary
``PROMETHEUS_MULTIPROC_DIR``, as under gunicorn), next to a bare Python function call.

Part 2 is bench/foundation.py's method: the WSGI app called in-process, the toolkit without any
metrics backend against the same app with each backend on (the tween, ``Server-Timing``, the
render timer), interleaved in rounds; the difference is what the automatic metrics add per request.
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Before prometheus_client is imported: it chooses its value storage then.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prometheus-"))

sys.path.insert(0, str(Path(__file__).parent))
import foundation  # type: ignore[import-not-found,unused-ignore]
from pyramid.config import Configurator

import c2cwsgiutils.pyramid
from c2cwsgiutils import stats, stats_pyramid


def bare() -> None:
    return None


def time_loop(function: Callable[[], None], calls: int) -> float:
    """Return the mean µs of one call."""
    perf_counter_ns = time.perf_counter_ns
    start = perf_counter_ns()
    for _ in range(calls):
        function()
    return (perf_counter_ns() - start) / calls / 1000


def one_timer() -> None:
    with stats.timer_context(["bench", "timer"]):
        pass


def one_counter() -> None:
    stats.increment_counter(["bench", "counter"])


def backends(sink: str) -> dict[str, dict[str, str]]:
    """Settings of each case: none, memory, statsd, prometheus."""
    return {
        "none": {},
        "memory": {"c2c.stats_view": "true"},
        "statsd": {"c2c.statsd_address": sink},
        "prometheus": {"c2c.prometheus": "true"},
    }


def make_app(settings: dict[str, str]) -> foundation.WSGIApp:
    stats_pyramid.reset()
    config = Configurator(settings={**foundation.SETTINGS, **settings})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.add_route("ping", "/api/ping")
    config.add_view(foundation.ping, route_name="ping", request_method="GET")
    app: foundation.WSGIApp = config.make_wsgi_app()
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="rounds per measure (default 9)")
    parser.add_argument("--calls", type=int, default=50_000, help="calls per round (default 50000)")
    args = parser.parse_args()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink_socket:
        sink_socket.bind(("127.0.0.1", 0))
        sink = f"127.0.0.1:{sink_socket.getsockname()[1]}"
        cases = backends(sink)

        print("Part 1: µs per call, median of rounds")
        print(f"{'backend':<12}{'bare call':>11}{'timer_context':>15}{'increment_counter':>19}")
        for name, settings in cases.items():
            make_app(settings)  # configures the backends of the case
            results = {function: [] for function in (bare, one_timer, one_counter)}  # type: dict[Callable[[], None], list[float]]
            for function in results:
                time_loop(function, args.calls // 10)
            for _ in range(args.rounds):
                for function, values in results.items():
                    values.append(time_loop(function, args.calls))
            bare_us, timer_us, counter_us = (statistics.median(values) for values in results.values())
            print(f"{name:<12}{bare_us:>11.3f}{timer_us:>15.3f}{counter_us:>19.3f}")

        print("\nPart 2: µs per request (GET /api/ping), toolkit without metrics vs with each backend")
        print(f"{'backend':<12}{'no metrics':>12}{'with':>10}{'added':>10}")
        calls = max(args.calls // 5, 1000)
        for name, settings in cases.items():
            if name == "none":
                continue
            # Both apps are built before measuring; the backends are those of the last one built,
            # which the app without metrics does not use (it has no tween).
            baseline = make_app({})
            with_metrics = make_app(settings)
            base_us, with_us = foundation.measure(
                (baseline, with_metrics), foundation.TEMPLATE, args.rounds, calls
            )
            print(f"{name:<12}{base_us:>12.2f}{with_us:>10.2f}{with_us - base_us:>10.2f}")
    stats_pyramid.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
