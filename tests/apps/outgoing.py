"""A Pyramid app for the outgoing-call tests: ``GET /call?url=U[&timeout=T]`` calls U with ``requests``."""

import time
from typing import Any

import requests
from pyramid.config import Configurator
from pyramid.request import Request

INI = """\
[app:main]
use = call:tests.apps.outgoing:factory
"""


def _call(request: Request) -> dict[str, Any]:
    timeout = request.params.get("timeout")
    started = time.monotonic()
    try:
        # Without ``timeout``: the toolkit's default applies.
        kwargs: dict[str, Any] = {"timeout": float(timeout)} if timeout else {}
        status: Any = requests.get(request.params["url"], **kwargs).status_code  # noqa: S113
    except requests.Timeout:
        status = "timeout"
    return {"status": status, "seconds": time.monotonic() - started}


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the app, with every feature of the toolkit included."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.add_route("call", "/call")
    config.add_view(_call, route_name="call", renderer="json")
    return config.make_wsgi_app()
