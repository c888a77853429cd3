"""In-process apps with a HealthCheck, for the health check's tests (WebTest).

:func:`make_app` keeps each app's registry until :func:`dispose_engines`, which a test module
calls after each test to close the engines of the apps that had a database. The app the health
check's tests run under gunicorn is testing/health_check_app.py.
"""

from collections.abc import Callable
from typing import Any

import webtest
from pyramid.config import Configurator

import c2cwsgiutils.pyramid
from c2cwsgiutils.db import ENGINES_KEY
from c2cwsgiutils.health_check import HealthCheck

_REGISTRIES: list[Any] = []


def dispose_engines() -> None:
    """Dispose of the engines of every app made since the last call."""
    while _REGISTRIES:
        for engine in _REGISTRIES.pop().get(ENGINES_KEY, {}).values():
            engine.dispose()


def make_app(setup: Callable[[HealthCheck, Configurator], None], **settings: str) -> webtest.TestApp:
    """Return the toolkit with a HealthCheck that ``setup`` fills, and ``settings``."""
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    _REGISTRIES.append(config.registry)
    setup(HealthCheck(config), config)
    return webtest.TestApp(config.make_wsgi_app())


def redis_app(url: str) -> webtest.TestApp:
    """Return a bare app whose HealthCheck has the Redis check of ``url`` (a 1 s timeout)."""
    config = Configurator(settings={"c2c.redis_url": url, "c2c.redis_timeout": "1s"})
    HealthCheck(config)
    return webtest.TestApp(config.make_wsgi_app())
