"""A Pyramid app for the client-info tests: ``GET /client`` answers what the request says of its client."""

import logging
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils import client_info

LOG = logging.getLogger("client_info_app")


def _client(request: Request) -> dict[str, Any]:
    LOG.warning("client_info_app answered")
    return {
        "client_addr": request.client_addr,
        "scheme": request.scheme,
        "host": request.host,
        "url": request.route_url("client"),
        "peer": request.environ.get(client_info.ORIGINAL, {}).get("REMOTE_ADDR", request.client_addr),
    }


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the app, with every feature of the toolkit included."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.add_route("client", "/client")
    config.add_view(_client, route_name="client", renderer="json")
    return config.make_wsgi_app()
