"""The WSGI application that ``c2cwsgiutils_run`` serves: the app of the ini file in ``C2CWSGIUTILS_CONFIG``.

For gunicorn: ``c2cwsgiutils.wsgi_app:create_application()``. It runs in every worker (unless
gunicorn preloads the app), so each worker applies the ini's logging configuration itself.
"""

from collections.abc import Mapping
from typing import Any

from c2cwsgiutils import loader
from c2cwsgiutils.gunicorn_settings import DEFAULT_CONFIG_FILE, ServerSettings

__all__ = ["DEFAULT_CONFIG_FILE", "config_file", "create_application"]


def config_file(environ: Mapping[str, str] | None = None) -> str:
    """Return the path of the app's ini file (``C2CWSGIUTILS_CONFIG``, default ``/app/production.ini``)."""
    return str(ServerSettings.declaration("config_file").resolve(None, environ))


def create_application(path: str | None = None, app_name: str = "main") -> Any:
    """Apply the ini file's logging configuration, then load and return its WSGI app."""
    path = path or config_file()
    loader.setup_logging(path)
    return loader.load_app(path, app_name)
