"""An app written for c2cwsgiutils 0.22, against the original's API only.

It is the standing proof of the drop-in promise: when it needs a change to run on this toolkit,
the promise was broken. Its code follows the original's README and example app: the include,
``setup_session`` in ``models.init``, views that add rows and return (``pyramid_tm`` commits),
``stats.timer_context`` with a list key, the health checks and a cornice service.
"""

from typing import Any

import requests
from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils.health_check import HealthCheck
from c2cwsgiutils_legacy_app import models

NOT_HAPPY = False
"""The custom health check fails while it is true."""


def _check_dependency(request: Request, response: requests.Response) -> None:
    del request
    if response.json().get("status") != "ok":
        raise Exception("the dependency is not ok")


def _custom_check(request: Request) -> None:
    del request
    if NOT_HAPPY:
        raise Exception("I'm not happy")


def main(_: Any, **settings: Any) -> Any:
    """Build the WSGI app (the ``paste.app_factory`` of production.ini)."""
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    models.init(config)

    config.add_route("legacy_ping", "/api/ping", request_method="GET")
    config.add_route("legacy_hello", "/api/hello")
    config.add_route("legacy_hello_forced", "/api/hello/forced", request_method="GET")
    config.add_route("legacy_hello_search", "/api/hello/search", request_method="POST")
    config.scan("c2cwsgiutils_legacy_app.views")
    config.scan("c2cwsgiutils_legacy_app.services")

    health_check = HealthCheck(config)
    health_check.add_db_session_check(models.DBSession, at_least_one_model=models.Hello)
    health_check.add_url_check(settings["app.dependency_url"], check_cb=_check_dependency)
    health_check.add_custom_check("custom", _custom_check, 2)

    return config.make_wsgi_app()
