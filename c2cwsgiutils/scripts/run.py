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

from c2cwsgiutils import extras, gunicorn_settings, loader, wsgi_app
from c2cwsgiutils.config_utils import SettingError

APP = "c2cwsgiutils.wsgi_app:create_application()"
GUNICORN_CONFIG = "python:c2cwsgiutils.gunicorn_config"


def gunicorn_command(extra_args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Return the gunicorn command line, or raise ValueError for bad ``GUNICORN_PARAMS``."""
    params = shlex.split(gunicorn_settings.ServerSettings.declaration("params").resolve(None, environ))
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra_args, *params, APP]


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
        command = gunicorn_command(extra_args, environ)
    except (loader.ConfigFileError, SettingError, extras.MissingExtraError) as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"c2cwsgiutils_run: GUNICORN_PARAMS: {error}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 (replacing ourselves with gunicorn is the point)


if __name__ == "__main__":
    sys.exit(main())
