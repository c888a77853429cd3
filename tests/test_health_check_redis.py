"""c2cwsgiutils.health_check's Redis check, in-process against the local Redis (127.0.0.1:6379).

A Redis that does not answer, in-process without a service: tests/unit/test_health_check.py.
"""

from collections.abc import Iterator

import pytest
from pyramid.config import Configurator

from c2cwsgiutils.health_check import HealthCheck
from tests.apps.health_check import dispose_engines, make_app, redis_app


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.mark.redis
def test_redis_check_when_redis_is_configured() -> None:
    assert redis_app("redis://127.0.0.1:6379/0").get("/c2c/health_check").json["successes"] == ["redis"]


@pytest.mark.redis
def test_add_redis_check_sets_the_name_and_level_of_the_redis_check() -> None:
    def setup(health_check: HealthCheck, config: Configurator) -> None:
        health_check.add_redis_check(name="cache", level=2)

    app = make_app(setup, **{"c2c.redis_url": "redis://127.0.0.1:6379/0"})
    assert app.get("/c2c/health_check").json["successes"] == []
    assert app.get("/c2c/health_check?max_level=2").json["successes"] == ["cache"]


@pytest.mark.redis
def test_add_redis_check_with_the_defaults_is_the_redis_check() -> None:
    app = make_app(
        lambda health_check, config: health_check.add_redis_check(),
        **{"c2c.redis_url": "redis://127.0.0.1:6379/0"},
    )
    assert app.get("/c2c/health_check").json["successes"] == ["redis"]
