"""A Pyramid app that adds its own fragments to the ops page through c2cwsgiutils.index.

``POST /index-echo`` answers the fields it was sent, as JSON: the target of a helper-built form.
"""

from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils.index
from c2cwsgiutils import index

HOSTILE = "<script>window.pwned = true</script>"


def _echo(request: Request) -> dict[str, Any]:
    return {"fields": {name: str(value) for name, value in request.POST.items()}}


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the toolkit's app with fragments as c2cgeoportal adds them, and a helper-built form."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.add_route("index_echo", "/index-echo", request_method="POST")
    config.add_view(_echo, route_name="index_echo", renderer="json")
    # c2cgeoportal's fragments open a <div> in one and close it in another.
    c2cwsgiutils.index.additional_title = '<div class="row"><div class="col-lg"><h2>Example app</h2>'
    c2cwsgiutils.index.additional_noauth.append("</div></div>")
    c2cwsgiutils.index.additional_noauth.append(
        index.section(
            HOSTILE,
            index.form(
                "../index-echo",
                index.input_("comment", value=HOSTILE),
                index.input_("verbose", value=True),
                index.button("Send"),
                method="post",
                target="_self",
            ),
        )
    )
    return config.make_wsgi_app()
