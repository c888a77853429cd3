"""A Pyramid app for the health check tests, its checks chosen by its ini settings.

- ``health.sleepers = N``: N checks ``sleep_<i>`` that take 200 ms each;
- ``health.hang = true``: a check ``hang`` that never returns, with a 1 s timeout;
- ``health.url = URL``: a URL check of ``URL``, with a 1 s timeout;
- ``sqlalchemy.url`` (and ``sqlalchemy_slave.url``): the database checks of ``setup_session``;
- ``health.version = true``: the version check (``add_version_check``, level 2).
"""

import threading
import time
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils.config_utils import parse_bool
from c2cwsgiutils.db import setup_session
from c2cwsgiutils.health_check import HealthCheck

INI = """\
[app:main]
use = call:testing.health_check_app:factory
{settings}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stdout,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(process)d] %(message)s
"""

_NEVER = threading.Event()


def _sleep(request: Request) -> None:
    time.sleep(0.2)


def _hang(request: Request) -> None:
    _NEVER.wait()


def factory(global_config: dict[str, str], **settings: str) -> Any:
    """Return the app with the checks its settings ask for."""
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    health_check = HealthCheck(config)
    for index in range(int(settings.get("health.sleepers", "0"))):
        health_check.add_custom_check(f"sleep_{index}", _sleep)
    if parse_bool(settings.get("health.hang", "false")):
        health_check.add_custom_check("hang", _hang, timeout=1)
    if settings.get("health.url"):
        health_check.add_url_check(settings["health.url"], timeout=1)
    if parse_bool(settings.get("health.version", "false")):
        health_check.add_version_check()
    if settings.get("sqlalchemy.url"):
        session = setup_session(config, "sqlalchemy", "sqlalchemy_slave")[0]
        health_check.add_db_session_check(session)
    return config.make_wsgi_app()
