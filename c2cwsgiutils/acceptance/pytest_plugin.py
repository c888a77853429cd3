"""pytest plugin (entry point ``pytest11``): the app under test as fixtures, and where it runs.

Fixtures: ``composition`` (session: the app, started once, see
:mod:`c2cwsgiutils.acceptance.composition`), ``app_url`` (its base URL) and ``connection`` (a
:class:`~c2cwsgiutils.acceptance.connection.Connection` to it). A project configures them by
overriding ``c2c_app_ini`` (the ini file of the process composition) and ``c2c_app_env`` (the
app's environment) in its conftest.py, and chooses where the app runs on the command line.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from c2cwsgiutils.acceptance.composition import (
    BaseComposition,
    Composition,
    ExternalComposition,
    ImageComposition,
    LogsUnavailableError,
    ProcessComposition,
)
from c2cwsgiutils.acceptance.connection import Connection

KINDS = ("process", "image", "compose")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the options that say where the app under test runs."""
    group = parser.getgroup("c2cwsgiutils", "c2cwsgiutils acceptance tests")
    group.addoption(
        "--c2c-app-url",
        default=os.environ.get("C2C_TEST_APP_URL") or None,
        help="test the app already running at this URL (default: $C2C_TEST_APP_URL); starts nothing",
    )
    group.addoption(
        "--c2c-composition",
        choices=KINDS,
        default="process",
        help="where to run the app: process (c2cwsgiutils_run, the default), image (buildah), compose",
    )
    group.addoption(
        "--c2c-app-ini",
        default="production.ini",
        help="the app's ini file, for the process composition (default: production.ini)",
    )
    group.addoption(
        "--c2c-image",
        default=os.environ.get("C2C_TEST_IMAGE") or None,
        help="the app's image, for the image composition (default: $C2C_TEST_IMAGE)",
    )
    group.addoption(
        "--c2c-compose-file",
        default="docker-compose.yaml",
        help="the Compose file, for the compose composition (default: docker-compose.yaml)",
    )
    group.addoption(
        "--c2c-compose-service",
        default="app",
        help="the app's service in the Compose file (default: app)",
    )
    group.addoption(
        "--c2c-compose-port",
        type=int,
        default=8080,
        help="the port the app's service listens on, published to the host (default: 8080)",
    )
    group.addoption(
        "--c2c-keep",
        action="store_true",
        help="leave the compose composition running after the session",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Report a test that needs the logs of an app started elsewhere as skipped, saying why."""
    try:
        return (yield)
    except LogsUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def c2c_app_ini(request: pytest.FixtureRequest) -> Path:
    """Return the ini file the process composition serves; override it in a conftest.py."""
    return Path(request.config.getoption("--c2c-app-ini"))


@pytest.fixture(scope="session")
def c2c_app_env() -> dict[str, str]:
    """Return the app's environment (added to the image's in the image composition); override it."""
    return {}


@pytest.fixture(scope="session")
def composition(
    request: pytest.FixtureRequest, c2c_app_ini: Path, c2c_app_env: dict[str, str]
) -> Iterator[BaseComposition]:
    """Start the app under test once for the session; stop it at the end."""
    option = request.config.getoption
    kind = option("--c2c-composition")
    started: BaseComposition
    if option("--c2c-app-url"):
        started = ExternalComposition(option("--c2c-app-url"))
    elif kind == "image":
        if not option("--c2c-image"):
            pytest.fail("the image composition needs --c2c-image (or C2C_TEST_IMAGE)", pytrace=False)
        started = ImageComposition(option("--c2c-image"), env=c2c_app_env)
    elif kind == "compose":
        started = Composition(
            option("--c2c-compose-file"),
            app_service=option("--c2c-compose-service"),
            app_port=option("--c2c-compose-port"),
            keep=option("--c2c-keep"),
        )
    else:
        started = ProcessComposition(c2c_app_ini, env=c2c_app_env)
    with started:
        yield started


@pytest.fixture(scope="session")
def app_url(composition: BaseComposition) -> str:
    """Return the base URL of the app under test."""
    return composition.base_url


@pytest.fixture
def connection(app_url: str) -> Iterator[Connection]:
    """Open a :class:`Connection` to the app under test."""
    with Connection(app_url) as opened:
        yield opened
