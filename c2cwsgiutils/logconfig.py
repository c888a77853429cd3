"""An ini file's logging sections as a ``logging.config.dictConfig`` dict, for gunicorn's ``logconfig_dict``.

Upstream 6.1's ``c2cwsgiutils.get_logconfig_dict``, which its apps' ``gunicorn.conf.py`` calls;
``c2cwsgiutils_run`` needs none of it (each worker applies the ini's logging as it loads the app).
"""

import ast
from configparser import SectionProxy
from typing import Any

from c2cwsgiutils import loader, pyramid_logging


def _names(section: SectionProxy, option: str) -> list[str]:
    return [name.strip() for name in section.get(option, "").split(",") if name.strip()]


def _logger_config(section: SectionProxy, is_root: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if "level" in section:
        config["level"] = section["level"]
    handlers = _names(section, "handlers")
    if handlers:
        config["handlers"] = handlers
    if not is_root and "propagate" in section:
        config["propagate"] = bool(section.getint("propagate"))
    return config


def _handler_config(name: str, section: SectionProxy) -> dict[str, Any]:
    if "args" in section:
        raise ValueError(
            f"[handler_{name}]: args cannot be given to a handler in a logconfig_dict; "
            "name them in kwargs = {...} instead"
        )
    class_name = section["class"]
    # fileConfig finds the logging module's classes by their bare name (StreamHandler).
    config: dict[str, Any] = {"class": class_name if "." in class_name else f"logging.{class_name}"}
    for option in ("level", "formatter"):
        if option in section:
            config[option] = section[option]
    if "filters" in section:
        config["filters"] = _names(section, "filters")
    if "kwargs" in section:
        config.update(ast.literal_eval(section["kwargs"]))
    return config


def _formatter_config(section: SectionProxy) -> dict[str, Any]:
    config: dict[str, Any] = {
        "format": section.get("format", raw=True),
        "datefmt": section.get("datefmt", "[%Y-%m-%d %H:%M:%S %z]", raw=True),
        "class": section.get("class", "logging.Formatter", raw=True),
    }
    if "style" in section:
        config["style"] = section.get("style", raw=True)
    return config


def logconfig_dict(filename: str) -> dict[str, Any]:
    """Return the logging configuration of an ini file as a ``logging.config.dictConfig`` dict.

    For gunicorn's ``logconfig_dict`` (upstream 6.1's ``gunicorn.conf.py``:
    ``logconfig_dict = get_logconfig_dict(get_paste_config())``). The file is read as the workers
    read it (:meth:`c2cwsgiutils.loader.Loader.logging_parser`: the environment as
    ``%(ENV_NAME)s``); its ``[loggers]``, ``[handlers]`` and ``[formatters]`` sections become the
    dict's, with ``disable_existing_loggers`` false. A handler's arguments must be named, in
    ``kwargs = {...}`` (a Python literal): ``args`` is refused with a ValueError. A file without
    logging sections, or ``C2CWSGIUTILS_LOGGING=default``, gives the default configuration.
    """
    ini = loader.get_loader(filename)
    parser = ini.logging_parser()
    if ini.uses_default_logging(parser):
        default: dict[str, Any] = pyramid_logging.default_config(
            pyramid_logging.LoggingSettings.resolve(None), ini.app_logger()
        )
        return default

    def sections(kind: str) -> list[tuple[str, SectionProxy]]:
        names = _names(parser[f"{kind}s"], "keys") if parser.has_section(f"{kind}s") else []
        return [(name, parser[f"{kind}_{name}"]) for name in names]

    root: dict[str, Any] = {}
    loggers: dict[str, Any] = {}
    for name, section in sections("logger"):
        if name == "root":
            root = _logger_config(section, is_root=True)
        else:
            loggers[section["qualname"]] = _logger_config(section, is_root=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": root,
        "loggers": loggers,
        "handlers": {name: _handler_config(name, section) for name, section in sections("handler")},
        "formatters": {name: _formatter_config(section) for name, section in sections("formatter")},
    }
