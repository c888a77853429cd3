"""An app that uses the toolkit as tilecloud-chain 1.23's server does (issue 23).

Its own code, in tilecloud-chain's shape: memory-map collectors registered on prometheus_client's
registry before the configurator, the toolkit included, a health check with a custom check that
fails with JSON, links added to the ops index page (one for everyone, one for operators), and a
security policy whose identity comes from ``auth.is_auth_user`` and whose permission is
``auth.check_access`` / ``check_access_config``; the admin's actions call ``auth_view``.

- ``GET /admin`` answers whether the request has access (``has_access``) and the auth type;
- ``POST /admin/run`` runs nothing but needs the operator (``auth_view``);
- the ``tiles_config`` check fails with the configuration's errors when ``tiles.broken`` is set.
"""

from typing import Any

import prometheus_client
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.security import Allowed, Denied

import c2cwsgiutils.auth
import c2cwsgiutils.index
import c2cwsgiutils.prometheus
import c2cwsgiutils.pyramid
from c2cwsgiutils import health_check
from c2cwsgiutils.auth import AuthConfig, AuthenticationType, auth_type, auth_view

TENANT = AuthConfig(github_repository="camptocamp/tiles-of-a-tenant", github_access_type="push")
_registered: list[bool] = []


class SecurityPolicy:
    """Access for the operator, as tilecloud-chain's policy gives it."""

    def identity(self, request: Request) -> dict[str, Any]:
        is_auth, user = c2cwsgiutils.auth.is_auth_user(request)
        is_admin = c2cwsgiutils.auth.check_access(request)
        return {"is_auth": is_auth, "login": user.get("login"), "is_admin": is_admin}

    def authenticated_userid(self, request: Request) -> str | None:
        login: str | None = self.identity(request)["login"]
        return login

    def permits(self, request: Request, context: Any, permission: str) -> Allowed | Denied:
        identity = self.identity(request)
        if identity["is_admin"]:
            return Allowed("the operator")
        if context is TENANT and c2cwsgiutils.auth.check_access_config(request, TENANT):
            return Allowed("access to the tenant's repository")
        return Denied("not signed in" if not identity["is_auth"] else "no access")


def admin(request: Request) -> dict[str, Any]:
    """The admin page's data: what tilecloud-chain's template receives."""
    kind = auth_type(request.registry.settings)
    return {
        "has_access": bool(request.has_permission("admin", TENANT)),
        "auth_type": kind.name if kind is not None else None,
        "github": kind == AuthenticationType.GITHUB,
    }


def run(request: Request) -> dict[str, Any]:
    """An admin action: for the operator only."""
    auth_view(request)
    return {"ran": True}


def _tiles_config(request: Request) -> str:
    if request.registry.settings.get("tiles.broken"):
        raise health_check.JsonCheckException(
            "the tile configuration has errors", {"layers": ["'roads' has no grid"]}
        )
    return "ok"


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the app (the toolkit's features as its settings and environment say)."""
    del global_config
    if not _registered:  # once per process, as tilecloud-chain's main runs once
        prometheus_client.REGISTRY.register(c2cwsgiutils.prometheus.MemoryMapCollector("pss"))
        prometheus_client.REGISTRY.register(c2cwsgiutils.prometheus.MemoryMapCollector("rss"))
        _registered.append(True)
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)
    health_check.HealthCheck(config).add_custom_check(name="tiles_config", check_cb=_tiles_config, level=1)
    config.set_security_policy(SecurityPolicy())
    c2cwsgiutils.index.additional_noauth.append(c2cwsgiutils.index.link("/admin", "Tiles admin"))
    c2cwsgiutils.index.additional_auth.append(c2cwsgiutils.index.link("/admin/run", "Run a generation"))
    config.add_route("admin", "/admin", request_method="GET")
    config.add_view(admin, route_name="admin", renderer="json")
    config.add_route("admin_run", "/admin/run", request_method="POST")
    config.add_view(run, route_name="admin_run", renderer="json")
    return config.make_wsgi_app()
