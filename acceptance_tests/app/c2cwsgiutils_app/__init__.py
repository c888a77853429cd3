"""The example app: a small Pyramid service that uses c2cwsgiutils as a user of the image would."""

import logging
import os
from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.request import Request
from sqlalchemy.orm import Session

import c2cwsgiutils.pyramid
from c2cwsgiutils import config_utils
from c2cwsgiutils.db import setup_session
from c2cwsgiutils_app import models

LOG = logging.getLogger(__name__)


def _worker_pid_header(event: NewResponse) -> None:
    event.response.headers["X-Worker-Pid"] = str(os.getpid())


def main(global_config: dict[str, str], **settings: Any) -> Any:
    """Build the WSGI app."""
    del global_config
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)

    # SQLALCHEMY_URL wins over the ini's sqlalchemy.url, as for every c2cwsgiutils setting; the
    # replica (SQLALCHEMY_URL_SLAVE) defaults to the same database, which means one engine.
    url = config_utils.get_str(settings, "SQLALCHEMY_URL", "sqlalchemy.url", "sqlite://")
    slave_url = config_utils.get_str(settings, "SQLALCHEMY_URL_SLAVE", "sqlalchemy_slave.url", url)
    config.add_settings({"sqlalchemy.url": url, "sqlalchemy_slave.url": slave_url})
    models.DBSession, primary, _replica = setup_session(
        config, "sqlalchemy", "sqlalchemy_slave", force_master=[r"GET /api/hello/forced_write"]
    )
    models.create_tables(primary)

    def dbsession(request: Request) -> Session:
        return models.DBSession()

    config.add_request_method(dbsession, "dbsession", reify=True)
    config.include("c2cwsgiutils_app.views")
    # Which worker answered: the acceptance tests check that state reaches every one.
    config.add_subscriber(_worker_pid_header, NewResponse)
    app = config.make_wsgi_app()
    LOG.info("c2cwsgiutils_app ready in process %d", os.getpid())
    return app
