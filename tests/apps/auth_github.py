"""A Pyramid app for the GitHub sign-in tests: the toolkit, its GitHub sign-in, and ``GET /access``.

``/access`` answers what ``c2cwsgiutils.auth`` says of the request: signed in, as whom, and
``check_access`` on two fixed repositories (never a repository named by the request).
"""

from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils import auth

ALLOWED = "camptocamp/allowed"
DENIED = "camptocamp/denied"


def _access(request: Request) -> dict[str, Any]:
    signed_in, user = auth.is_auth_user(request)
    return {
        "signed_in": signed_in,
        "login": user.get("login"),
        "auth_type": auth.auth_type(request.registry.settings).name,
        ALLOWED: auth.check_access(request, ALLOWED, "push"),
        DENIED: auth.check_access(request, DENIED, "push"),
    }


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the app with every feature of the toolkit (the GitHub sign-in among them)."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    config.add_route("access", "/access")
    config.add_view(_access, route_name="access", renderer="json")
    return config.make_wsgi_app()
