"""Load ``production.ini`` with the environment available as ``%(ENV_NAME)s``.

The environment is handed to PasteDeploy (for the app) and to ``logging.config.fileConfig``
(for the logging sections) as ConfigParser defaults, with three precautions:

- values are escaped, so a ``%`` in a password is used verbatim;
- names stay case-sensitive in both, so ``%(http_proxy)s`` and ``%(HTTP_PROXY)s`` each read
  their own variable, exactly as named (plain ``fileConfig`` would fold them together);
- variables named ``here`` or ``__file__`` in any case are left out: those names are
  PasteDeploy's own (the ini file's folder and path).

A variable set to the empty string interpolates as the empty string, except the logging
variables of :class:`~c2cwsgiutils.pyramid_logging.LoggingSettings` (``LOG_LEVEL``,
``LOG_TYPE``...), whose defaults apply when they are unset or empty. A file without logging
sections gets the default logging configuration built from those variables.

:func:`check_config` runs the same loading, short of calling the app's factory and installing
the logging configuration, so that ``c2cwsgiutils_run`` accepts a file exactly when the workers
will load it. Also registered as the plaster scheme ``c2c`` (``pserve c2c://production.ini``);
an app may subclass :class:`Loader` for a scheme of its own, as c2cgeoportal does (overriding
``get_wsgi_app_settings`` and calling ``super()``).
"""

import configparser
import importlib.metadata
import logging
import logging.config
import os
from collections.abc import Mapping
from typing import Any

import plaster
import plaster_pastedeploy
from paste.deploy import loadwsgi

from c2cwsgiutils import pyramid_logging
from c2cwsgiutils.config_utils import SettingError
from c2cwsgiutils.pyramid_logging import LoggingSettings

# PasteDeploy's own interpolation names; an environment variable must not shadow them.
_RESERVED = frozenset(("here", "__file__"))
# What fileConfig reads of each handler and logger section (formatter sections are read raw).
_HANDLER_OPTIONS = ("class", "formatter", "args", "kwargs", "level")


class ConfigFileError(Exception):
    """The ini file cannot be used; the message says why, in one line."""


def environ_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment as interpolation defaults (see the module's documentation).

    Also :func:`c2cwsgiutils.get_config_defaults` (upstream's name), of ``os.environ``.
    """
    result = {
        name: value.replace("%", "%%") for name, value in environ.items() if name.lower() not in _RESERVED
    }
    for _, declaration in LoggingSettings.declarations():
        if not environ.get(declaration.env):
            result[declaration.env] = declaration.default_text()
    return result


class _CaseSensitiveParser(configparser.ConfigParser):
    """A ConfigParser that keeps names as written, like PasteDeploy's."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


class Loader(plaster_pastedeploy.Loader):  # type: ignore[misc]
    """A PasteDeploy plaster loader that offers the environment to ``%(ENV_NAME)s``."""

    def _get_defaults(self, defaults: Mapping[str, str] | None = None) -> dict[str, str]:
        result = environ_defaults(os.environ)
        # Explicit defaults, and PasteDeploy's own ``here`` and ``__file__``.
        result.update(super()._get_defaults(defaults))
        return result

    def logging_parser(self, defaults: Mapping[str, str] | None = None) -> configparser.ConfigParser:
        """Return the parser whose logging sections :meth:`setup_logging` applies."""
        parser = _CaseSensitiveParser(defaults=self._get_defaults(defaults))
        with open(self.uri.path, encoding="utf-8") as config_file:
            parser.read_file(config_file)
        return parser

    def uses_default_logging(self, parser: configparser.ConfigParser) -> bool:
        """Tell whether the default logging configuration applies rather than the file's sections."""
        return (
            not parser.has_section("loggers")
            or LoggingSettings.declaration("config").resolve(None) == "default"
        )

    def setup_logging(self, defaults: Mapping[str, str] | None = None) -> None:
        """Apply the file's logging sections, or the default configuration (see LoggingSettings)."""
        parser = self.logging_parser(defaults)
        if self.uses_default_logging(parser):
            pyramid_logging.setup_default_logging(self.app_logger())
        else:
            logging.config.fileConfig(parser, disable_existing_loggers=False)

    def app_logger(self, name: str = "main") -> str | None:
        """Return the top-level package of the app's factory: the logger ``LOG_LEVEL`` applies to.

        Read from the app's section when it names its factory (``use = call:...``, ``use =
        egg:...``, ``paste.app_factory``), without importing it: the gunicorn master applies the
        logging configuration too, and a module it imported would be its workers' after a reload.
        """
        try:
            module = self._factory_module(name)
        except Exception:
            module = None
        if module is None:
            try:
                module = getattr(self.app_context(name).object, "__module__", None)
            except Exception:
                return None
        return module.split(".")[0] if isinstance(module, str) else None

    def _factory_module(self, name: str) -> str | None:
        """Return the module of the ``[app:name]`` section's factory, or None if it says otherwise."""
        parser = self.logging_parser()
        section = f"app:{name}"
        if not parser.has_section(section):
            return None
        options = parser[section]
        if "paste.app_factory" in options:
            return options["paste.app_factory"].split(":")[0].strip() or None
        use = options.get("use", "").strip()
        if use.startswith("call:"):
            return use.removeprefix("call:").split(":")[0].strip() or None
        if use.startswith("egg:"):
            distribution, _, entry = use.removeprefix("egg:").partition("#")
            found = importlib.metadata.distribution(distribution.strip()).entry_points.select(
                group="paste.app_factory", name=entry.strip() or "main"
            )
            return next((point.module for point in found), None)
        return None

    def app_context(self, name: str = "main") -> Any:
        """Return PasteDeploy's context of the app: what ``get_wsgi_app`` builds, short of calling it."""
        return loadwsgi.loadcontext(
            loadwsgi.APP,
            self.pastedeploy_spec,
            name=name,
            relative_to=self.relative_to,
            global_conf=self._get_defaults(),
        )


def get_loader(path: str) -> Loader:
    """Return the loader for an ini file path."""
    return Loader(plaster.parse_uri(os.path.abspath(path)))


def check_config(path: str, app_name: str = "main") -> None:
    """Raise ConfigFileError, in one line, unless the workers will load the ini file.

    It finds and interpolates the app's section and imports its factory as PasteDeploy does,
    and builds the logging configuration as :meth:`Loader.setup_logging` does, without
    installing it.
    """
    if not os.path.isfile(path):
        raise ConfigFileError(f"{path}: no such file (set C2CWSGIUTILS_CONFIG to the app's ini file)")
    loader = get_loader(path)
    try:
        loader.app_context(app_name)
        parser = loader.logging_parser()
        if loader.uses_default_logging(parser):
            LoggingSettings.resolve(None)
        else:
            _check_logging(parser)
    except ConfigFileError as error:
        raise ConfigFileError(f"{path}: {error}") from None
    except SettingError as error:
        raise ConfigFileError(f"{path}: default logging configuration: {error}") from None
    except configparser.InterpolationMissingOptionError as error:
        raise ConfigFileError(
            f"{path}: [{error.section}] {error.option} uses %({error.reference})s, "
            f"but no environment variable {error.reference} is set"
        ) from None
    except LookupError as error:
        if str(error).startswith("No section"):
            raise ConfigFileError(
                f"{path}: no [app:{app_name}], [pipeline:{app_name}] or [composite:{app_name}]"
            ) from None
        raise ConfigFileError(f"{path}: {_one_line(error)}") from None
    except Exception as error:
        raise ConfigFileError(f"{path}: {type(error).__name__}: {_one_line(error)}") from None


def _keys(parser: configparser.ConfigParser, section: str) -> list[str]:
    return [key.strip() for key in parser[section]["keys"].split(",") if key.strip()]


def _check_logging(parser: configparser.ConfigParser) -> None:
    """Read the logging sections as ``fileConfig`` does, and build its handlers, then close them."""
    formatters = logging.config._create_formatters(parser)  # type: ignore[attr-defined]
    handlers: dict[str, logging.Handler] = {}
    try:
        for name in _keys(parser, "handlers"):
            section = f"handler_{name}"
            if not parser.has_section(section):
                raise ConfigFileError(f"[handlers] names {name}, but there is no [{section}]")
            for option in _HANDLER_OPTIONS:
                parser.get(section, option, fallback=None)
        handlers = logging.config._install_handlers(parser, formatters)  # type: ignore[attr-defined]
        loggers = _keys(parser, "loggers")
        if "root" not in loggers or not parser.has_section("logger_root"):
            raise ConfigFileError(
                "the logging configuration needs root in [loggers] keys and a [logger_root]"
            )
        for name in loggers:
            section = f"logger_{name}"
            if not parser.has_section(section):
                raise ConfigFileError(f"[loggers] names {name}, but there is no [{section}]")
            if name != "root":
                parser[section]["qualname"]
                parser[section].getint("propagate", fallback=1)
            level = parser.get(section, "level", fallback=None)
            if level is not None and level not in logging.getLevelNamesMapping():
                raise ConfigFileError(
                    f"[{section}] level = {level}: not a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL)"
                )
            for used in filter(None, (hand.strip() for hand in parser[section]["handlers"].split(","))):
                if used not in handlers:
                    raise ConfigFileError(f"[{section}] uses handler {used}, which [handlers] does not list")
    finally:
        for handler in handlers.values():
            handler.close()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_app(path: str, app_name: str = "main") -> Any:
    """Load the WSGI application defined in the ini file."""
    return get_loader(path).get_wsgi_app(app_name)


def setup_logging(path: str) -> None:
    """Apply the ini file's logging sections, if it has any."""
    get_loader(path).setup_logging()
