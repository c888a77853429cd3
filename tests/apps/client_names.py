"""The smallest app an ini can name, for the client-names tests' scripts and loaders."""

from typing import Any

from pyramid.config import Configurator


def factory(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return a Pyramid app with the toolkit and nothing else."""
    del global_config
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    return config.make_wsgi_app()
