"""A Pyramid app for the Redis Sentinel tests: every worker's level of one logger, gathered by broadcast.

- ``GET /levels`` broadcasts a question through the Redis and answers each worker's pid and the
  level of the logger ``sentinel_probe``, which the log level view sets
  (``{C2C_BASE_PATH}/logging/level?name=sentinel_probe&level=DEBUG``).
"""

import logging
import os
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils import broadcast

INI = """\
[app:main]
use = call:tests.apps.sentinel:factory
"""
LOGGER = "sentinel_probe"


def _level() -> dict[str, Any]:
    return {"pid": os.getpid(), "level": logging.getLevelName(logging.getLogger(LOGGER).level)}


def _levels(request: Request) -> dict[str, Any]:
    del request
    answers = broadcast.broadcast("sentinel_probe_level", expect_answers=True, timeout=2)
    return {"answers": answers, **broadcast.BROADCASTER.status()}


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the app, with every feature of the toolkit included."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    broadcast.subscribe("sentinel_probe_level", _level)
    config.add_route("levels", "/levels")
    config.add_view(_levels, route_name="levels", renderer="json")
    return config.make_wsgi_app()
