"""The example app: a small Pyramid service that uses c2cwsgiutils as a user of the image would."""

import logging
import os
from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.request import Request

import c2cwsgiutils.pyramid
from c2cwsgiutils import config_utils
from c2cwsgiutils.db import setup_request_session, setup_session
from c2cwsgiutils.health_check import HealthCheck
from c2cwsgiutils_app import models

LOG = logging.getLogger(__name__)


def _worker_pid_header(event: NewResponse) -> None:
    event.response.headers["X-Worker-Pid"] = str(os.getpid())


def _custom_check(request: Request) -> None:
    """The app's own health check; ``?unhappy=1`` makes it fail, to see a failure."""
    if request.params.get("unhappy"):
        raise RuntimeError("I'm not happy")


def _add_health_checks(config: Configurator, alembic_ini: str) -> None:
    """Health checks, as the README shows them (``{C2C_BASE_PATH}/health_check?max_level=3``)."""
    health_check = HealthCheck(config)
    # The function gets a request on the app's own address (C2C_HEALTH_CHECK_BASE_URL, by default
    # the first address of GUNICORN_BIND), never the client's: its Host must not pick what is called.
    health_check.add_url_check(lambda request: request.route_url("ping"), name="ping")
    # Level 2: the table is empty until something is posted.
    health_check.add_db_session_check(models.DBSession, at_least_one_model=models.Hello, level=2)
    health_check.add_custom_check("custom", _custom_check, 2)
    health_check.add_alembic_check(models.DBSession, alembic_ini, 3)


def main(global_config: dict[str, str], **settings: Any) -> Any:
    """Build the WSGI app."""
    here = global_config.get("here") or os.getcwd()
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
    # New code: request.dbsession, one session per request, routed as DBSession (same engines).
    # Both join the request's transaction: pyramid_tm commits what the views wrote after them.
    setup_request_session(config, "sqlalchemy", "sqlalchemy_slave")
    _add_health_checks(config, settings.get("app.alembic_ini") or os.path.join(here, "alembic.ini"))
    config.include("c2cwsgiutils_app.views")
    # The CORS services (c2cwsgiutils.services.create) are registered by the scan.
    config.scan("c2cwsgiutils_app.services")
    # Which worker answered: the acceptance tests check that state reaches every one.
    config.add_subscriber(_worker_pid_header, NewResponse)
    app = config.make_wsgi_app()
    LOG.info("c2cwsgiutils_app ready in process %d", os.getpid())
    return app
