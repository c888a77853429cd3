"""Old code against new, in one run: the throughput section's full app, served by both.

    .venv/bin/python bench/compare.py OLD_COMMIT [--rounds 10] [--seconds 5]

The old commit is checked out in a temporary git worktree, put first on the old server's
``PYTHONPATH`` (before the editable install of the working tree); both servers run the same ini,
settings and load, in alternating rounds (bench/harness.py). Prints the medians and the ratios
new/old of requests per second and server CPU per request: what a change costs or gains.
"""

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import harness  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
import run  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from c2cwsgiutils.acceptance.udp import UdpReceiver  # noqa: E402


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """Check ``commit`` out in a temporary worktree; remove it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="c2cwsgiutils-old-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], check=True, cwd=HERE.parent)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], check=False, cwd=HERE.parent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the commit to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--path", default="/hello", help="the URL path wrk drives")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        old_tree = stack.enter_context(worktree(args.old))
        # Which c2cwsgiutils the old server imports: the worktree's, not the editable install.
        imported = subprocess.run(
            [sys.executable, "-c", "import c2cwsgiutils; print(c2cwsgiutils.__file__)"],
            env={"PYTHONPATH": f"{old_tree}:{HERE}"},
            cwd=tmp,  # as the servers (bench/harness.py): not the checkout
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not imported.startswith(str(old_tree)):
            raise RuntimeError(f"the old server would import {imported}, not the old commit's")
        ini = Path(tmp) / "full.ini"
        ini.write_text(run.harness_ini(False), encoding="utf-8")
        receiver = stack.enter_context(UdpReceiver())
        env = {**run.full_environment(receiver.address), "BENCH_DB_URL": "postgresql://unused"}
        old = stack.enter_context(
            harness.c2cwsgiutils_run(
                ini,
                run.WORKERS,
                run.THREADS,
                {**env, "PYTHONPATH": f"{old_tree}:{HERE}"},
                wait=False,
            )
        )
        new = stack.enter_context(harness.c2cwsgiutils_run(ini, run.WORKERS, run.THREADS, env, wait=False))
        old.wait(), new.wait()
        for server in (old, new):  # warm up: imports, caches, first routes
            harness.wrk(server, args.path, args.seconds, run.CONNECTIONS)
        old_runs, new_runs = harness.alternate(
            lambda: harness.wrk(old, args.path, args.seconds, run.CONNECTIONS),
            lambda: harness.wrk(new, args.path, args.seconds, run.CONNECTIONS),
            args.rounds,
        )
    for name, unit in (("requests_per_second", "req/s"), ("cpu_us_per_request", "µs")):
        before = harness.median([getattr(result, name) for result in old_runs])
        after = harness.median([getattr(result, name) for result in new_runs])
        print(f"{name}: old {before:,.1f} {unit}, new {after:,.1f} {unit}, new/old {after / before:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
