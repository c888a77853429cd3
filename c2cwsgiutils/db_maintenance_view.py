"""Upstream 6.1's name for :mod:`c2cwsgiutils.database.maintenance`, the read-only maintenance view."""

from pyramid.config import Configurator

from c2cwsgiutils.database import maintenance


def includeme(config: Configurator) -> None:
    """Include :mod:`c2cwsgiutils.database.maintenance` (its view needs ``DB_MAINTENANCE_SECRET``)."""
    config.include(maintenance.includeme)


def install_subscriber(config: Configurator) -> None:
    """Include the feature: upstream's older name for :func:`includeme`."""
    config.include(maintenance.includeme)
