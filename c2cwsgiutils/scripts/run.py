"""``c2cwsgiutils_run``: serve the app of ``C2CWSGIUTILS_CONFIG`` with gunicorn.

gunicorn replaces this process (``exec``), so signals from the container runtime reach it
directly. Arguments given to this command, then ``GUNICORN_PARAMS``, are passed on to gunicorn
and win over the defaults of :mod:`c2cwsgiutils.gunicorn_settings`.
"""

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence

from c2cwsgiutils import extras, gunicorn_settings, loader, master_identity, prometheus, sentry, wsgi_app
from c2cwsgiutils.config_utils import SettingError

APP = "c2cwsgiutils.wsgi_app:create_application()"
GUNICORN_CONFIG = "python:c2cwsgiutils.gunicorn_config"


def gunicorn_command(extra_args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Return the gunicorn command line, or raise ValueError for bad ``GUNICORN_PARAMS``."""
    params = shlex.split(gunicorn_settings.ServerSettings.declaration("params").resolve(None, environ))
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra_args, *params, APP]


def gunicorn_pid_file(command: Sequence[str], environ: Mapping[str, str]) -> str:
    """Return the pid file gunicorn will write: the last ``--pid`` given to it, else ours."""
    pid_file = gunicorn_settings.pid_file(environ)
    try:
        cmd_args = shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError:
        cmd_args = []  # gunicorn will say what is wrong with it
    args = [*cmd_args, *command]  # gunicorn's command line wins over GUNICORN_CMD_ARGS
    for index, arg in enumerate(args):
        if arg in ("--pid", "-p") and index + 1 < len(args):
            pid_file = args[index + 1]
        elif arg.startswith("--pid="):
            pid_file = arg.removeprefix("--pid=")
        elif arg.startswith("-p") and not arg.startswith("--") and len(arg) > 2:
            pid_file = arg.removeprefix("-p")
    return pid_file


def free_pid_file(pid_file: str) -> None:
    """Remove a stale pid file, or raise PidFileError when a live master of ours owns it.

    gunicorn refuses to start while its pid file names any live process, and a stale pid file
    (a master killed with SIGKILL, a container restarted with the same ``/tmp``) often does.
    """
    try:
        pid = master_identity.verified_master(pid_file)
    except (master_identity.NoPidFileError, master_identity.UnverifiableError):
        return  # nothing there, or no /proc to tell: gunicorn's own check applies
    except master_identity.StalePidFileError as error:
        master_identity.remove_stale(pid_file, error.content)
        print(f"c2cwsgiutils_run: {error}; removed it", file=sys.stderr)
        return
    raise master_identity.PidFileError(
        f"another server (pid {pid}) uses the pid file {pid_file}; set C2CWSGIUTILS_PID_FILE to another path"
    )


def main(argv: Sequence[str] | None = None) -> int:  # noqa: RET503 (execv does not return)
    """Check the configuration, then exec gunicorn."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_run",
        description="Serve the app of C2CWSGIUTILS_CONFIG (default /app/production.ini) with gunicorn. "
        "Other arguments are passed on to gunicorn.",
        allow_abbrev=False,  # an abbreviation could swallow a gunicorn option
    )
    parser.add_argument(
        "--check", action="store_true", help="check the configuration and exit (0 when the app would load)"
    )
    args, extra_args = parser.parse_known_args(argv)
    environ = dict(os.environ)
    try:
        extras.require("gunicorn", "server", "c2cwsgiutils_run")
        # Fail here, in one line, rather than in gunicorn's traceback when it reads its config.
        gunicorn_settings.settings_from_environ(environ)
        loader.check_config(wsgi_app.config_file(environ))
        sentry.check(environ)  # a bad SENTRY_CLIENT_* in one line, not in every worker's traceback
        command = gunicorn_command(extra_args, environ)
    except (loader.ConfigFileError, SettingError, extras.MissingExtraError) as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"c2cwsgiutils_run: GUNICORN_PARAMS: {error}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    try:
        free_pid_file(gunicorn_pid_file(command, environ))
    except master_identity.PidFileError as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    try:
        # Before gunicorn forks: prometheus_client reads it when a worker imports it.
        os.environ.update(prometheus.prepare_for_run(environ, wsgi_app.config_file(environ), os.getpid()))
    except OSError as error:
        print(f"c2cwsgiutils_run: the Prometheus metrics stay per worker: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 (replacing ourselves with gunicorn is the point)


if __name__ == "__main__":
    sys.exit(main())
