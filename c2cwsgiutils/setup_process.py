"""Set up the toolkit in a process that serves no requests: a script, a cron job, a queue worker.

::

    import c2cwsgiutils

    c2cwsgiutils.setup_process()  # or c2cwsgiutils.setup_process.init("c2c:///app/production.ini")

:func:`init` applies the ini file's logging configuration (through :mod:`c2cwsgiutils.loader`,
with ``%(ENV_NAME)s`` and the ``LOG_*`` defaults, as the server does) and switches on, from the
ini's settings and the environment, what the toolkit does outside requests (:data:`FEATURES`):
the broadcast, the metrics backends and SQL timers, the log level, SQL profiler and stack dump
subscribers, and Sentry. It has no ini file to read when none is given and
``C2CWSGIUTILS_CONFIG`` (default ``/app/production.ini``) does not exist: then logging and the
features come from the environment alone.

A command that needs the app itself (its models, its settings) takes the ini on its command line
and bootstraps it, as Pyramid's ``pshell`` does::

    parser = argparse.ArgumentParser()
    c2cwsgiutils.setup_process.fill_arguments(parser)
    env = c2cwsgiutils.setup_process.bootstrap_application_from_options(parser.parse_args())
    try:
        ...  # env["registry"], env["request"], env["app"]
    finally:
        env["closer"]()

The names are those of the later upstream versions (``init``, ``init_logging``,
``fill_arguments``, ``bootstrap_application_from_options``, ``bootstrap_application``).
Importing this module does nothing: unlike upstream 2.x and 3.x, where the import itself set the
process up, a call is needed.
"""

import argparse
import logging
import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, TypedDict

import plaster
import pyramid.registry
import pyramid.request
import pyramid.scripting
from pyramid.config import Configurator
from pyramid.scripts.common import parse_vars

from c2cwsgiutils import loader, pyramid_logging, wsgi_app

__all__ = [
    "FEATURES",
    "PyramidEnv",
    "bootstrap_application",
    "bootstrap_application_from_options",
    "fill_arguments",
    "init",
    "init_logging",
]

LOG = logging.getLogger(__name__)

FEATURES = (
    # First: the subscribers below receive the broadcasts through it.
    "c2cwsgiutils.broadcast",
    # The log level view's changes (LOG_VIEW_SECRET), applied in this process too.
    "c2cwsgiutils.logging_view",
    # The SQL profiler's switch (SQL_PROFILER_SECRET).
    "c2cwsgiutils.sql_profiler",
    # The metrics backends (statsd, Prometheus...), the SQL timers and the outgoing calls' timers.
    "c2cwsgiutils.stats_pyramid",
    # debug/stacks and debug/memory answers from this process too (DEBUG_VIEW_SECRET).
    "c2cwsgiutils.debug",
    # Error reports (SENTRY_URL).
    "c2cwsgiutils.sentry",
)
"""The features a process that serves no requests gets: those that act outside requests.

Their views are declared on a configuration that is never made into an app, so only what each
feature starts in the process remains (a transport, subscriptions, backends, a Sentry client).
"""

_LOCK = threading.Lock()
_DONE: list[str] = []  # the config file of the first init, once it has run


class PyramidEnv(TypedDict):
    """What :func:`bootstrap_application` returns, as :func:`pyramid.paster.bootstrap` does."""

    root: Any
    closer: Callable[[], None]
    registry: pyramid.registry.Registry
    request: pyramid.request.Request
    root_factory: Any
    app: Any


OWN_SCHEMES = frozenset(("c2c", "c2c+ini", "file+ini"))
"""The plaster schemes :mod:`c2cwsgiutils.loader` reads (``file+ini`` is a plain path's).

Any other ``file+<extension>`` is a plain path too (``/app/production.conf``), read as an ini.
"""


def _config_path(config_uri: str | None) -> tuple[str, str, bool, str]:
    """Return ``(ini path, app name, whether it was given, plaster scheme)`` of a path or plaster URI.

    ``c2c:///app/production.ini``, ``c2c://production.ini``, ``production.ini#main`` and plain
    paths all name an ini file that :mod:`c2cwsgiutils.loader` reads; None means
    ``C2CWSGIUTILS_CONFIG`` (default ``/app/production.ini``).
    """
    if config_uri is None:
        return wsgi_app.config_file(), "main", False, "c2c"
    uri = plaster.parse_uri(config_uri)
    return uri.path, uri.fragment or "main", True, uri.scheme


def _loader_of(config_uri: str | None) -> tuple[Any, str]:
    """Return the plaster loader of the configuration and the app's name.

    Our :class:`~c2cwsgiutils.loader.Loader` for our schemes and plain paths; for another scheme
    (``c2cgeoportal://development.ini``), the loader plaster finds for it, often a subclass of
    ours. No loader when the default file is missing; a file that was named and does not exist
    raises :class:`~c2cwsgiutils.loader.ConfigFileError`.
    """
    path, app_name, given, scheme = _config_path(config_uri)
    if scheme not in OWN_SCHEMES and not scheme.startswith("file+"):
        assert config_uri is not None  # noqa: S101 (the default is ours)
        return plaster.get_loader(config_uri, protocols=["wsgi"]), app_name
    if not os.path.isfile(path):
        if given:
            raise loader.ConfigFileError(f"{path}: no such file")
        return None, app_name
    return loader.get_loader(path), app_name


def _main_logger() -> str:
    """Return the logger the script's own records go to: its top-level package, or ``__main__``.

    ``LOG_LEVEL`` applies to it when no ini file says otherwise.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if not name or name == "__main__":
        return "__main__"
    return str(name).split(".")[0]


def _setup_logging(config_loader: Any, defaults: dict[str, str] | None = None) -> None:
    if config_loader is None:
        pyramid_logging.setup_default_logging(_main_logger())
    else:
        config_loader.setup_logging(defaults)


def init_logging(config_file: str | None = None) -> None:
    """Apply the logging configuration of the ini file (or of the environment) and nothing else."""
    _setup_logging(_loader_of(config_file)[0])


def init(config_file: str | None = None) -> None:
    """Set up logging and the :data:`FEATURES` from the ini file, once per process.

    ``config_file`` is a path or a plaster URI (``c2c:///app/production.ini``); by default
    ``C2CWSGIUTILS_CONFIG``, else ``/app/production.ini``, and when that does not exist, the
    environment alone. A second call does nothing.
    """
    with _LOCK:
        if _DONE:
            LOG.debug("the process is already set up from %s", _DONE[0])
            return
        config_loader, app_name = _loader_of(config_file)
        _setup_logging(config_loader)
        settings: dict[str, Any] = {}
        if config_loader is not None:
            settings = dict(config_loader.get_settings(f"app:{app_name}"))
        config = Configurator(settings=settings)
        for feature in FEATURES:
            config.include(feature)
        _DONE.append(config_loader.uri.path if config_loader is not None else "the environment")


def fill_arguments(
    parser: argparse.ArgumentParser,
    use_attribute: bool = False,
    default_config_uri: str | None = None,
) -> None:
    """Add the ini file's arguments to ``parser``, as ``pshell`` has them.

    ``config_uri`` (optional, default ``default_config_uri``, else ``C2CWSGIUTILS_CONFIG`` or
    ``/app/production.ini``) and ``config_vars`` (``name=value`` pairs for ``%(name)s`` in the
    file); with ``use_attribute``, as the options ``--config-uri`` and ``--config-vars``.
    """
    default = default_config_uri if default_config_uri is not None else f"c2c://{wsgi_app.config_file()}"
    parser.add_argument(
        "--config-uri" if use_attribute else "config_uri",
        nargs="?",
        default=default,
        help=f"the app's ini file, a path or a URI (default: {default})",
    )
    parser.add_argument(
        "--config-vars" if use_attribute else "config_vars",
        nargs="*",
        default=(),
        help="name=value pairs for %%(name)s in the ini file, beside the environment variables",
    )


def bootstrap_application_from_options(options: argparse.Namespace) -> PyramidEnv:
    """Bootstrap the app of the arguments that :func:`fill_arguments` added."""
    return bootstrap_application(
        options.config_uri, parse_vars(options.config_vars) if options.config_vars else None
    )


def bootstrap_application(config_uri: str | None = None, options: dict[str, str] | None = None) -> PyramidEnv:
    """Apply the ini file's logging configuration, load its app and return Pyramid's environment.

    As :func:`pyramid.paster.bootstrap`, through :mod:`c2cwsgiutils.loader` (``%(ENV_NAME)s``
    and ``options`` are offered to the file), or through the loader plaster has for the URI's
    scheme when it is not ours. Call ``env["closer"]()`` when done.
    """
    config_loader, app_name = _loader_of(config_uri)
    if config_loader is None:
        raise loader.ConfigFileError(f"{_config_path(config_uri)[0]}: no such file")
    config_loader.setup_logging(options)
    app = config_loader.get_wsgi_app(app_name, options)
    env: PyramidEnv = pyramid.scripting.prepare(registry=app.registry)
    env["app"] = app
    return env


class _CallableModule(types.ModuleType):
    """The class of this module, which makes ``c2cwsgiutils.setup_process()`` call :func:`init`."""

    def __call__(self, config_file: str | None = None) -> None:
        init(config_file)


sys.modules[__name__].__class__ = _CallableModule
