"""Wall time of ``{C2C_BASE_PATH}/health_check`` with five checks of 200 ms each (target: <= 300 ms).

Serves testing/health_check_app.py (``health.sleepers = 5``) under the real ``c2cwsgiutils_run``
(gunicorn, 2 workers) on a free loopback port, then times ``--calls`` GETs of the health check
from a client with keep-alive, and the liveness view ``{C2C_BASE_PATH}/health`` for comparison.
Run one after the other, the five checks would take 1000 ms. Exit 1 if the median misses the target.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from c2cwsgiutils.acceptance.server import AppServer

REPO = Path(__file__).parent.parent
sys.path.insert(0, str(REPO))

from testing import health_check_app  # noqa: E402

TARGET_MS = 300.0


def timings(session: requests.Session, url: str, calls: int, status: int = 200) -> list[float]:
    """Return the wall time of each call, in ms; every answer must have ``status``."""
    result = []
    for _ in range(calls):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        result.append((time.perf_counter() - started) * 1000)
        if response.status_code != status:
            raise SystemExit(f"{url}: {response.status_code} {response.text}")
    return result


def describe(name: str, values: list[float]) -> str:
    """Return a line with the median, min and max of ``values``."""
    return (
        f"{name:<40} median {statistics.median(values):7.1f} ms   "
        f"min {min(values):7.1f}   max {max(values):7.1f}   ({len(values)} calls)"
    )


def main() -> int:
    """Serve the app, time the calls, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "health.ini"
        ini.write_text(health_check_app.INI.format(settings="health.sleepers = 5"), encoding="utf-8")
        with (
            AppServer(ini, env={"PYTHONPATH": str(REPO)}, workers=2) as server,
            requests.Session() as session,
        ):
            timings(session, server.url("/c2c/health_check"), 4)  # warm-up: both workers
            checks = timings(session, server.url("/c2c/health_check"), args.calls)
            alive = timings(session, server.url("/c2c/health"), args.calls)
    print(describe("health_check, 5 checks x 200 ms", checks))
    print(describe("health (liveness, no check)", alive))
    median = statistics.median(checks)
    overhead = median - 200
    print(
        f"over the longest check: {overhead:.1f} ms; sequential would be 1000 ms; target <= {TARGET_MS:g} ms"
    )
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
