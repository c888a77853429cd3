"""The gunicorn configuration file that ``c2cwsgiutils_run`` uses: ``-c python:c2cwsgiutils.gunicorn_config``.

A gunicorn configuration file is read for its module-level names, so this is the one module
that reads the environment when imported; it is meant to be imported by gunicorn only. The
values and their environment variables are in :mod:`c2cwsgiutils.gunicorn_settings`.
"""

import os

from c2cwsgiutils.gunicorn_settings import settings_from_environ

globals().update(settings_from_environ(os.environ))
