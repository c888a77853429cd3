"""``c2cwsgiutils_reload``: make the running gunicorn replace its workers, never leaving none serving.

By default it rolls (:mod:`c2cwsgiutils.server.worker_readiness`): it asks the master for one more worker
per old one (SIGTTIN), waits until every new one has loaded the app, then for one less per old
one (SIGTTOU: gunicorn stops the oldest first, each once its requests are answered). Requests are
served all along, by the old workers until the new ones are ready. ``--hup`` sends SIGHUP instead,
gunicorn's own reload, which also re-reads gunicorn's settings but stops the old workers before
the new ones have loaded the app (requests wait meanwhile); it is also what a master without
ready marks (gunicorn started with another configuration file) gets.

The master's pid comes from the pid file that ``c2cwsgiutils_run`` has gunicorn write
(``C2CWSGIUTILS_PID_FILE``), and is signalled only if it is the very process that wrote it
(:mod:`c2cwsgiutils.server.master_identity`): a stale pid file never sends a signal to whatever process
got its number since.
"""

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from c2cwsgiutils.server import gunicorn_settings, master_identity, worker_readiness


def main(argv: Sequence[str] | None = None) -> int:
    """Replace the workers of the gunicorn master of the pid file."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_reload", description="Gracefully reload the workers of the running gunicorn."
    )
    parser.add_argument(
        "--pid-file", help="default: $C2CWSGIUTILS_PID_FILE or " + gunicorn_settings.DEFAULT_PID_FILE
    )
    parser.add_argument(
        "--hup",
        action="store_true",
        help="send SIGHUP (gunicorn's reload, which also re-reads its settings) instead of rolling",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the new workers and the old ones' last requests (default: 120)",
    )
    args = parser.parse_args(argv)
    pid_file = args.pid_file or gunicorn_settings.pid_file(os.environ)
    try:
        pid = master_identity.verified_master(pid_file)
        if not args.hup and worker_readiness.folder(pid_file).is_dir():
            old, new = worker_readiness.roll(pid, pid_file, args.timeout)
            print(
                f"c2cwsgiutils_reload: gunicorn (pid {pid}) replaced its workers "
                f"{sorted(old)} by {sorted(new)}, ready before the old ones stopped"
            )
            return 0
        os.kill(pid, signal.SIGHUP)
    except worker_readiness.RollError as error:
        print(f"c2cwsgiutils_reload: {error}; the master keeps serving", file=sys.stderr)
        return 1
    except master_identity.UnverifiableError as error:
        print(
            f"c2cwsgiutils_reload: {error}; to signal it anyway: kill -HUP $(cat {pid_file})", file=sys.stderr
        )
        return 1
    except master_identity.PidFileError as error:
        print(f"c2cwsgiutils_reload: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"c2cwsgiutils_reload: cannot signal the gunicorn master: {error}", file=sys.stderr)
        return 1
    print(f"c2cwsgiutils_reload: asked gunicorn (pid {pid}) to reload its workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
