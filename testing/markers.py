"""Markers by need: each test is marked with what it needs beyond ``pip install -e '.[dev]'``.

A contributor without Chromium runs ``pytest -m "not browser"``; ``make test-unit`` runs
``tests/unit``, which needs none of them. Tests get their markers from the fixtures they use
(the table below) and from a module's own ``pytestmark`` when they reach a service directly.
"""

import pytest

MARKERS = {
    "postgres": "needs the PostgreSQL primary (TEST_POSTGRES_URL, 127.0.0.1:5432 by default)",
    "replica": "needs the streaming replica of scripts/pg-replica.sh (port 5433)",
    "redis": "needs redis-server (a private one is started, or the one on 127.0.0.1:6379)",
    "sentinel": "needs redis-sentinel (Debian's redis-sentinel package)",
    "rsyslog": "needs rsyslogd (Debian's rsyslog package)",
    "browser": "needs Debian's chromium and chromium-driver",
    "graphviz": "needs Graphviz's dot (Debian's graphviz package)",
    "wrk": "needs wrk (Debian's wrk package) and a free CPU for the benchmark's servers",
    "image": "needs the images that `make acceptance-image` builds (buildah, debootstrap)",
    "server": "starts servers under the real c2cwsgiutils_run or gunicorn (subprocesses)",
}

# The fixtures that bring a need with them.
FIXTURE_MARKERS = {
    "postgres_url": ("postgres",),
    "postgres_replica_url": ("postgres", "replica"),
    "redis_server": ("redis",),
    "redis_url": ("redis",),
    "browser": ("browser",),
    "start_server": ("server",),
    "request_in_flight": ("server",),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, markers in FIXTURE_MARKERS.items():
            if fixture in names:
                for marker in markers:
                    item.add_marker(marker)
        # The example app's acceptance tests run it under gunicorn.
        if "acceptance_tests" in item.path.parts:
            item.add_marker("server")
