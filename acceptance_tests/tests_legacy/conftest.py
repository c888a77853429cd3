"""The legacy app (acceptance_tests/app_legacy) as the app under test of this folder's suite.

One server for the whole suite, on the local PostgreSQL primary and its replica: under
c2cwsgiutils_run in `make test` (the process composition), in its image in `make
acceptance-image` (``--c2c-composition image``, the image named by ``C2C_TEST_LEGACY_IMAGE``).
The suite's tests talk to it as the original's suites did: ``Connection(base_url, origin)``.

Beside it: a stub of the service its URL health check asks (``DEPENDENCY_URL``), and a UDP
receiver for its CEE log records (``LOG_HOST``, ``LOG_PORT``). Its table is created here, with its
own metadata, as a migration would before the app starts.
"""

import os
from collections.abc import Iterator

import pytest
import sqlalchemy
from c2cwsgiutils_legacy_app import models

from acceptance_tests.tests_legacy.legacy import LEGACY_INI, ORIGIN, Dependency
from c2cwsgiutils.acceptance.composition import BaseComposition, ImageComposition, ProcessComposition
from c2cwsgiutils.acceptance.connection import Connection
from c2cwsgiutils.acceptance.stub_server import stub_server
from c2cwsgiutils.acceptance.udp import UdpReceiver


@pytest.fixture(scope="session")
def dependency() -> Iterator[str]:
    """Return the URL the app's URL check asks."""
    with stub_server(Dependency) as url:
        yield f"{url}/status"


@pytest.fixture(scope="session")
def cee_receiver() -> Iterator[UdpReceiver]:
    """A real UDP socket, where the app's CEE handler (``logstash`` in its ini) sends its records."""
    with UdpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def legacy(
    request: pytest.FixtureRequest,
    postgres_url: str,
    postgres_replica_url: str,
    dependency: str,
    cee_receiver: UdpReceiver,
) -> Iterator[BaseComposition]:
    """The legacy app, started once for the suite, with two workers."""
    engine = sqlalchemy.create_engine(postgres_url)
    models.Base.metadata.create_all(engine)
    engine.dispose()
    env = {
        "SQLALCHEMY_URL": postgres_url,
        "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
        "DEPENDENCY_URL": dependency,
        "LOG_TYPE": "console, logstash",
        "LOG_HOST": cee_receiver.host,
        "LOG_PORT": str(cee_receiver.port),
        "STATS_VIEW": "1",
        "GUNICORN_WORKERS": "2",
    }
    composition: BaseComposition
    if request.config.getoption("--c2c-composition") == "image":
        image = os.environ.get("C2C_TEST_LEGACY_IMAGE")
        if not image:
            pytest.fail("the legacy app's image composition needs C2C_TEST_LEGACY_IMAGE", pytrace=False)
        composition = ImageComposition(image, env=env)
    else:
        composition = ProcessComposition(LEGACY_INI, env=env, workers=2)
    with composition:
        yield composition


@pytest.fixture
def app_connection(legacy: BaseComposition) -> Iterator[Connection]:
    """A connection to the legacy app, made as the original's suites made it."""
    connection = Connection(legacy.base_url + "/", ORIGIN)
    yield connection
    connection.session.close()
