"""``c2cwsgiutils_run``: serve the app of ``C2CWSGIUTILS_CONFIG`` with gunicorn.

gunicorn replaces this process (``exec``), so signals from the container runtime reach it
directly. Arguments given to this command, then ``GUNICORN_PARAMS``, are passed on to gunicorn
and win over the defaults of :mod:`c2cwsgiutils.gunicorn_settings`.
"""

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from c2cwsgiutils import config as c2c_config
from c2cwsgiutils import gunicorn_settings, loader, wsgi_app

APP = "c2cwsgiutils.wsgi_app:create_application()"
GUNICORN_CONFIG = "python:c2cwsgiutils.gunicorn_config"


def gunicorn_command(extra_args: Sequence[str], environ: dict[str, str]) -> list[str]:
    """Return the gunicorn command line, or raise ValueError for bad ``GUNICORN_PARAMS``."""
    params = shlex.split(environ.get("GUNICORN_PARAMS", ""))
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra_args, *params, APP]


def main(argv: Sequence[str] | None = None) -> int:  # noqa: RET503 (execv does not return)
    """Check the configuration, then exec gunicorn."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_run",
        description="Serve the app of C2CWSGIUTILS_CONFIG (default /app/production.ini) with gunicorn. "
        "Other arguments are passed on to gunicorn.",
    )
    _, extra_args = parser.parse_known_args(argv)
    environ = dict(os.environ)
    try:
        loader.check_config(wsgi_app.config_file(environ))
        # Fail here, in one line, rather than in gunicorn's traceback when it reads its config.
        gunicorn_settings.settings_from_environ(environ)
        command = gunicorn_command(extra_args, environ)
    except (loader.ConfigFileError, c2c_config.SettingError) as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"c2cwsgiutils_run: GUNICORN_PARAMS: {error}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)  # noqa: S606 (replacing ourselves with gunicorn is the point)


if __name__ == "__main__":
    sys.exit(main())
