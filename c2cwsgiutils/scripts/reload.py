"""``c2cwsgiutils_reload``: make the running gunicorn replace its workers gracefully.

gunicorn answers SIGHUP by starting new workers with a fresh load of the app, then stopping the
old ones once they have finished their requests: no request is dropped. The master's pid comes
from the pid file that ``c2cwsgiutils_run`` has gunicorn write (``C2CWSGIUTILS_PID_FILE``).
"""

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from c2cwsgiutils import gunicorn_settings


class ReloadError(Exception):
    """The reload could not be asked for; the message says why."""


def master_pid(pid_file: str) -> int:
    """Return the pid of the running gunicorn master named in the pid file."""
    try:
        pid = int(Path(pid_file).read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise ReloadError(f"{pid_file}: no such file; is c2cwsgiutils_run running?") from None
    except (OSError, ValueError) as error:
        raise ReloadError(f"{pid_file}: cannot read a pid: {error}") from None
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        command = cmdline.read_bytes()
    except FileNotFoundError:
        raise ReloadError(f"{pid_file}: process {pid} is not running") from None
    except OSError:
        return pid  # no /proc here: trust the pid file
    if b"gunicorn" not in command:
        raise ReloadError(f"{pid_file}: process {pid} is not gunicorn (stale pid file?)")
    return pid


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
        pid = master_pid(pid_file)
        os.kill(pid, signal.SIGHUP)
    except ReloadError as error:
        print(f"c2cwsgiutils_reload: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"c2cwsgiutils_reload: cannot signal the gunicorn master: {error}", file=sys.stderr)
        return 1
    print(f"c2cwsgiutils_reload: asked gunicorn (pid {pid}) to reload its workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
