"""``c2cwsgiutils_reload``: make the running gunicorn replace its workers gracefully.

gunicorn answers SIGHUP by starting new workers with a fresh load of the app, then stopping the
old ones once they have finished their requests: no request is dropped. The master's pid comes
from the pid file that ``c2cwsgiutils_run`` has gunicorn write (``C2CWSGIUTILS_PID_FILE``), and
is signalled only if it is the very process that wrote it (:mod:`c2cwsgiutils.master_identity`):
a stale pid file never sends SIGHUP to whatever process got its number since.
"""

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from c2cwsgiutils import gunicorn_settings, master_identity


def main(argv: Sequence[str] | None = None) -> int:
    """Send SIGHUP to the gunicorn master."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_reload", description="Gracefully reload the workers of the running gunicorn."
    )
    parser.add_argument(
        "--pid-file", help="default: $C2CWSGIUTILS_PID_FILE or " + gunicorn_settings.DEFAULT_PID_FILE
    )
    args = parser.parse_args(argv)
    pid_file = args.pid_file or gunicorn_settings.pid_file(os.environ)
    try:
        pid = master_identity.verified_master(pid_file)
        os.kill(pid, signal.SIGHUP)
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
