"""Upstream 6.1's name for :mod:`c2cwsgiutils.versions`, the ``versions.json`` view."""

from pathlib import Path

from pyramid.config import Configurator

from c2cwsgiutils import versions


def includeme(config: Configurator) -> None:
    """Include :mod:`c2cwsgiutils.versions`."""
    config.include(versions.includeme)


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.versions")``."""
    config.include(versions.includeme)


def get_version() -> str | None:
    """Return the git hash of the versions file (``C2C_VERSIONS_PATH`` of the environment), or None."""
    path = versions.VersionsSettings.resolve(None).path
    content = versions.read(path) if Path(path).exists() else None
    return versions.main_version(content)[0] if content is not None else None
