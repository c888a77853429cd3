"""Load ``production.ini`` with the environment available as ``%(ENV_NAME)s``.

The environment is handed to PasteDeploy and ``logging.config.fileConfig`` as ConfigParser
defaults. Two things in a real environment break that if passed as they are: a value holding a
``%`` (ConfigParser reads it as the start of an interpolation) and two names differing only in
case (ConfigParser folds option names to lower case and refuses duplicates). So values are
escaped and, of names that fold together, the first in sorted order (the upper-case spelling)
is kept.

Also registered as the plaster scheme ``c2c``, so ``pserve c2c://production.ini`` works too.
"""

import configparser
import os
from collections.abc import Mapping
from typing import Any

import plaster
import plaster_pastedeploy

APP_SECTION_PREFIXES = ("app:", "pipeline:", "composite:")

# Variables an ini file may use without the environment defining them; the environment wins.
ENVIRON_DEFAULTS = {
    "LOG_LEVEL": "INFO",
    "C2CWSGIUTILS_LOG_LEVEL": "INFO",
    "SQL_LOG_LEVEL": "WARNING",
    "OTHER_LOG_LEVEL": "WARNING",
}


class ConfigFileError(Exception):
    """The ini file cannot be used; the message says why, in one line."""


def environ_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment as interpolation defaults: ``%`` escaped, one name per case-folded key.

    :data:`ENVIRON_DEFAULTS` fill in what the environment leaves unset or empty.
    """
    environ = {**ENVIRON_DEFAULTS, **{name: value for name, value in environ.items() if value != ""}}
    result: dict[str, str] = {}
    folded_seen: set[str] = set()
    for name in sorted(environ):
        folded = name.lower()
        if folded in folded_seen:
            continue
        folded_seen.add(folded)
        result[name] = environ[name].replace("%", "%%")
    return result


class Loader(plaster_pastedeploy.Loader):  # type: ignore[misc]
    """A PasteDeploy plaster loader that offers the environment to ``%(ENV_NAME)s``."""

    def _get_defaults(self, defaults: Mapping[str, str] | None = None) -> dict[str, str]:
        result = environ_defaults(os.environ)
        # Explicit defaults, and PasteDeploy's own ``here`` and ``__file__``, win over the environment.
        result.update(super()._get_defaults(defaults))
        return result


def get_loader(path: str) -> Loader:
    """Return the loader for an ini file path."""
    return Loader(plaster.parse_uri(os.path.abspath(path)))


def check_config(path: str, app_name: str = "main") -> None:
    """Raise ConfigFileError unless the ini file can be read and its app section fully interpolated."""
    if not os.path.isfile(path):
        raise ConfigFileError(f"{path}: no such file (set C2CWSGIUTILS_CONFIG to the app's ini file)")
    # The same defaults (environment, here, __file__) as the loader that will load the app.
    parser = configparser.ConfigParser(defaults=get_loader(path)._get_defaults())
    try:
        with open(path, encoding="utf-8") as config_file:
            parser.read_file(config_file)
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        raise ConfigFileError(f"{path}: {_one_line(error)}") from None
    sections = [prefix + app_name for prefix in APP_SECTION_PREFIXES if parser.has_section(prefix + app_name)]
    if not sections:
        raise ConfigFileError(f"{path}: no [app:{app_name}], [pipeline:{app_name}] or [composite:{app_name}]")
    _check_interpolation(path, parser, sections[0])
    if parser.has_section("loggers"):
        # Formatter sections are left out: logging reads them raw, so %(asctime)s is not interpolated.
        for section in parser.sections():
            if section.startswith(("logger_", "handler_")):
                _check_interpolation(path, parser, section)


def _check_interpolation(path: str, parser: configparser.ConfigParser, section: str) -> None:
    defaults = parser.defaults()
    for option in parser.options(section):
        if option in defaults:
            continue
        try:
            parser.get(section, option)
        except configparser.InterpolationMissingOptionError as error:
            raise ConfigFileError(
                f"{path}: [{section}] {option} uses %({error.reference})s, "
                f"but no environment variable {error.reference.upper()} is set"
            ) from None
        except configparser.Error as error:
            raise ConfigFileError(f"{path}: [{section}] {option}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_app(path: str, app_name: str = "main") -> Any:
    """Load the WSGI application defined in the ini file."""
    return get_loader(path).get_wsgi_app(app_name)


def setup_logging(path: str) -> None:
    """Apply the ini file's logging sections, if it has any."""
    get_loader(path).setup_logging()
