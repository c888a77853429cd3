"""Make every feature's ``includeme`` safe to call more than once."""

from pyramid.config import Configurator

_INCLUDED_KEY = "c2cwsgiutils.included"


def first_time(config: Configurator, feature: str) -> bool:
    """Return True the first time a feature is included in this registry, False afterwards."""
    included: set[str] = config.registry.setdefault(_INCLUDED_KEY, set())
    if feature in included:
        return False
    included.add(feature)
    return True
