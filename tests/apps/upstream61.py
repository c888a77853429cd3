"""An app and a loader subclass as upstream 6.1's clients write them (tests/unit/test_upstream61_names.py).

``GeoLoader`` is shaped like c2cgeoportal's ``lib/loader.py``: it completes the toolkit's
settings in ``get_wsgi_app_settings`` and has a ``__repr__`` of its own.
"""

import decimal
from collections.abc import Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils.loader import Loader

SCHEME = "upstream61geo"
"""The plaster scheme the tests register for :class:`GeoLoader` (as c2cgeoportal's ``c2cgeoportal://``)."""


class GeoLoader(Loader):
    """c2cgeoportal's form: the settings completed after the toolkit's."""

    def get_wsgi_app_settings(
        self, name: str | None = None, defaults: dict[str, str] | None = None
    ) -> dict[str, Any]:
        settings = dict(super().get_wsgi_app_settings(name, defaults))
        settings.setdefault("available_locale_names", ["en", "fr"])
        return settings

    def _get_defaults(self, defaults: Mapping[str, str] | None = None) -> dict[str, str]:
        """Offer one more default, so that a test can see this loader was used."""
        result: dict[str, str] = super()._get_defaults(defaults)
        result["FROM_THE_SUBCLASS"] = "yes"
        return result

    def __repr__(self) -> str:
        return f'GeoLoader(uri="{self.uri}")'


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return a Pyramid app with the toolkit and a view rendered by ``fast_json``."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")

    def amounts(request: Request) -> dict[str, Any]:
        return {"amount": decimal.Decimal("3.30"), "path": "a/b", "name": "é"}

    config.add_route("amounts", "/amounts")
    config.add_view(amounts, route_name="amounts", renderer="fast_json")
    config.add_route("plain", "/plain")
    config.add_view(lambda request: {"a": 1}, route_name="plain", renderer="json")
    return config.make_wsgi_app()
