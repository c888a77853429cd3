"""The example app as the acceptance suite's app under test (the c2cwsgiutils pytest plugin).

`make test` serves it with c2cwsgiutils_run (the process composition); `make acceptance-image`
runs its image (``--c2c-composition image``); ``--c2c-app-url`` points the suite at a running one.
"""

from pathlib import Path

import pytest

from testing.fixtures import EXAMPLE_APP_INI


@pytest.fixture(scope="session")
def c2c_app_ini() -> Path:
    return EXAMPLE_APP_INI


@pytest.fixture(scope="session")
def c2c_app_env(postgres_url: str, postgres_replica_url: str) -> dict[str, str]:
    """The local PostgreSQL primary and its replica, two workers, production mode."""
    return {
        "SQLALCHEMY_URL": postgres_url,
        "SQLALCHEMY_URL_SLAVE": postgres_replica_url,
        "GUNICORN_WORKERS": "2",
        "DEVELOPMENT": "0",
    }
