"""The WSGI application that ``c2cwsgiutils_run`` serves: the app of the ini file in ``C2CWSGIUTILS_CONFIG``.

For gunicorn: ``c2cwsgiutils.wsgi_app:create_application()``, or the original's
``c2cwsgiutils.wsgi_app:application``. Either runs in every worker (unless gunicorn preloads the
app), so each worker applies the ini's logging configuration itself.

``application`` is made on first access, not at import: importing this module (as
``c2cwsgiutils_run`` and the logging setup do) loads no app.
"""

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from c2cwsgiutils import loader
from c2cwsgiutils.server.gunicorn_settings import DEFAULT_CONFIG_FILE, ServerSettings

__all__ = ["DEFAULT_CONFIG_FILE", "application", "config_file", "create", "create_application"]

_LOCK = threading.Lock()


def config_file(environ: Mapping[str, str] | None = None) -> str:
    """Return the path of the app's ini file (``C2CWSGIUTILS_CONFIG``, default ``/app/production.ini``)."""
    return str(ServerSettings.declaration("config_file").resolve(None, environ))


def create_application(path: str | None = None, app_name: str = "main") -> Any:
    """Apply the ini file's logging configuration, then load and return its WSGI app."""
    path = path or config_file()
    loader.setup_logging(path)
    return loader.load_app(path, app_name)


def create() -> Any:
    """Return the app of ``C2CWSGIUTILS_CONFIG`` (the original's name for :func:`create_application`)."""
    return create_application()


if TYPE_CHECKING:
    application: Any
    """The app of ``C2CWSGIUTILS_CONFIG``, loaded on first access (once per process)."""
else:

    def __getattr__(name: str) -> Any:
        """Load ``application`` on first access, then keep it as a plain module attribute."""
        if name != "application":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        with _LOCK:
            app = globals().get("application")
            if app is None:
                try:
                    app = create_application()
                except AttributeError as error:
                    # An AttributeError from here would read as "no attribute application".
                    raise RuntimeError(f"cannot load the app of {config_file()}: {error}") from error
                globals()["application"] = app
        return app
