"""An app that answers what it was sent, for the tests of c2cwsgiutils.acceptance.connection.

``/echo`` takes every method; its query can ask for an answer: ``status``, ``cors=1`` (allow the
request's Origin), ``cache`` (a Cache-Control value), ``pad`` (that many characters of padding),
``sleep`` (seconds to wait first).
``/xml`` answers an XML document.
"""

import time
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

INI = """\
[app:main]
use = call:tests.apps.echo:factory
"""


def echo(request: Request) -> dict[str, Any]:
    """Answer the request's method, headers, query, form, files and JSON body."""
    query = request.GET
    time.sleep(float(query.get("sleep", "0")))
    request.response.status_int = int(query.get("status", "200"))
    if query.get("cors") == "1" and "Origin" in request.headers:
        request.response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
    if "cache" in query:
        request.response.headers["Cache-Control"] = query["cache"]
    files = {
        name: value.file.read().decode()
        for name, value in request.POST.items()
        if hasattr(value, "file") and value.file is not None
    }
    form = {name: value for name, value in request.POST.items() if isinstance(value, str)}
    is_json = request.content_type == "application/json" and request.body
    return {
        "method": request.method,
        "headers": dict(request.headers),
        "params": dict(query),
        "form": form,
        "files": files,
        "json": request.json_body if is_json else None,
        "pad": "x" * int(query.get("pad", "0")),
        # The client's port: two requests from the same port came over the same TCP connection.
        "remote_port": request.environ.get("REMOTE_PORT"),
    }


def xml(request: Request) -> Response:
    """Answer a small XML document."""
    return Response(b'<?xml version="1.0"?><root><item id="1">one</item></root>', content_type="text/xml")


def factory(global_config: dict[str, str], **settings: str) -> Any:
    """Return the WSGI app, with the toolkit included (request IDs, JSON errors)."""
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.add_route("echo", "/echo")
    config.add_view(echo, route_name="echo", renderer="json")
    config.add_route("xml", "/xml")
    config.add_view(xml, route_name="xml")
    return config.make_wsgi_app()
