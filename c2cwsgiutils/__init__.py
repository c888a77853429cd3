"""Operations toolkit for Pyramid WSGI services.

``c2cwsgiutils.setup_process()`` sets up a process that serves no requests (a script, a cron job):
see :mod:`c2cwsgiutils.setup_process`. :func:`get_config_defaults` gives the environment as ini
defaults. Importing the package imports nothing else: those modules (and Pyramid with them) are
imported on first use of the names.
"""

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

__all__ = ["get_config_defaults", "get_logconfig_dict", "get_paste_config", "setup_process"]


def get_config_defaults() -> dict[str, str]:
    """Return the environment as ConfigParser defaults, as the ``c2c://`` loader offers it to the ini file.

    For gunicorn's ``raw_paste_global_conf`` (``["=".join(e) for e in get_config_defaults().items()]``)
    and other readers of ``production.ini``: see :func:`c2cwsgiutils.loader.environ_defaults`
    (``%`` escaped, names kept in their case, ``here`` and ``__file__`` left out, the ``LOG_*``
    defaults filled in).
    """
    loader = importlib.import_module(f"{__name__}.loader")
    defaults: dict[str, str] = loader.environ_defaults(os.environ)
    return defaults


def get_logconfig_dict(filename: str) -> dict[str, Any]:
    """Return the ini file's logging as a ``dictConfig`` dict: :func:`.logconfig.logconfig_dict`."""
    logconfig = importlib.import_module(f"{__name__}.logconfig")
    config: dict[str, Any] = logconfig.logconfig_dict(filename)
    return config


def get_paste_config() -> str:
    """Return the ini file's path given to gunicorn (``--paste PATH``, ``--paster=PATH``...).

    Read from ``sys.argv``, as upstream 6.1 does in a ``gunicorn.conf.py``; without that option,
    ``C2CWSGIUTILS_CONFIG`` (default ``/app/production.ini``), as :func:`c2cwsgiutils.wsgi_app.config_file`.
    """
    arguments = iter(sys.argv)
    for argument in arguments:
        if argument in ("--paste", "--paster"):
            following = next(arguments, None)
            if following is not None:
                return following
            break
        option, equals, value = argument.partition("=")
        if equals and option in ("--paste", "--paster"):
            return value
    wsgi_app = importlib.import_module(f"{__name__}.wsgi_app")
    path: str = wsgi_app.config_file()
    return path


if TYPE_CHECKING:
    from c2cwsgiutils import setup_process as setup_process
else:

    def __getattr__(name: str) -> Any:
        """Import ``setup_process`` on first access (its import sets the attribute for the next ones)."""
        if name == "setup_process":
            return importlib.import_module(f"{__name__}.setup_process")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
