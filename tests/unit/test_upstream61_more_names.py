"""More of upstream 6.1's names (issue 23): the older include functions and the stand-in modules.

Each is called on a bare Configurator (what is included is read from the registry), or in an
in-process app. Connection's ``cache_expected`` against a server: tests/test_acceptance_connection.py;
``add_db_session_check(engine_type=...)``: tests/unit/test_health_check.py.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import webtest
from pyramid.config import Configurator

from c2cwsgiutils import (
    config_utils,
    db_maintenance_view,
    debug,
    errors,
    index,
    logging_view,
    ops_views,
    pretty_json,
    prometheus,
    request_tracking,
    sql_profiler,
    stats,
    stats_pyramid,
    version,
)
from c2cwsgiutils.acceptance.connection import CacheExpected
from c2cwsgiutils.include import first_time


@pytest.fixture(autouse=True)
def _clean(clean_ops_state: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("C2C_VERSIONS_PATH", raising=False)
    monkeypatch.delenv("C2C_PROMETHEUS", raising=False)
    monkeypatch.delenv("C2C_REQUESTS_REQUEST_ID", raising=False)
    stats_pyramid.reset()
    yield
    stats_pyramid.reset()
    request_tracking.stop_propagating_to_requests()


def included(config: Configurator, feature: str) -> bool:
    """Tell whether ``feature``'s include ran (it cannot run a second time)."""
    return not first_time(config, feature)


def route_paths(config: Configurator) -> dict[str, str]:
    config.commit()
    return {route.name: route.pattern for route in config.get_routes_mapper().get_routes()}


# The older include functions: each includes its feature, without a warning.

OLDER_FORMS: dict[str, tuple[Callable[[Configurator], None], str]] = {
    "debug.init": (debug.init, "debug"),
    "errors.init": (errors.init, "errors"),
    "index.init": (index.init, "ops_page"),
    "pretty_json.init": (pretty_json.init, "pretty_json"),
    "request_tracking.init": (request_tracking.init, "request_tracking"),
    "sql_profiler.init": (sql_profiler.init, "sql_profiler"),
    "stats_pyramid.init": (stats_pyramid.init, "stats"),
    "logging_view.install_subscriber": (logging_view.install_subscriber, "logging_view"),
    "version.init": (version.init, "versions"),
    "version.includeme": (version.includeme, "versions"),
    "db_maintenance_view.install_subscriber": (db_maintenance_view.install_subscriber, "db_maintenance"),
    "db_maintenance_view.includeme": (db_maintenance_view.includeme, "db_maintenance"),
    "prometheus.includeme": (prometheus.includeme, "stats"),
}


@pytest.mark.parametrize("name", sorted(OLDER_FORMS))
def test_an_older_form_includes_its_feature_once(name: str) -> None:
    function, feature = OLDER_FORMS[name]
    config = Configurator(settings={})
    function(config)
    function(config)  # as harmless as a second include
    assert included(config, feature)
    config.commit()


def test_the_older_forms_add_the_views_their_settings_ask_for() -> None:
    config = Configurator(
        settings={
            "c2c.debug_view_secret": "s",
            "c2c.log_view_secret": "s",
            "c2c.db_maintenance_secret": "s",
        }
    )
    debug.init(config)
    logging_view.install_subscriber(config)
    db_maintenance_view.includeme(config)
    paths = route_paths(config)
    assert paths["c2c_debug_stacks"] == "/c2c/debug/stacks"
    assert paths["c2c_logging_level"] == "/c2c/logging/level"
    assert paths["c2c_db_maintenance"] == "/c2c/db/maintenance"


def test_pretty_json_init_adds_the_fast_json_renderer() -> None:
    config = Configurator(settings={})
    pretty_json.init(config)
    config.add_route("value", "/value")
    config.add_view(lambda request: {"b": 1, "a": "é/"}, route_name="value", renderer="fast_json")
    assert webtest.TestApp(config.make_wsgi_app()).get("/value").text == '{"b":1,"a":"é/"}'


def test_errors_init_answers_errors_in_json() -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("boom")

    config = Configurator(settings={})
    errors.init(config)
    config.add_route("broken", "/broken")
    config.add_view(broken, route_name="broken")
    response = webtest.TestApp(config.make_wsgi_app()).get("/broken", status=500)
    assert response.json["status"] == 500


class _Capture(requests.adapters.BaseAdapter):
    """A transport that answers 200 and keeps the request ID header of each request sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str | None] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request.headers.get(request_tracking.HEADER))
        response = requests.Response()
        response.status_code, response.request = 200, request
        return response

    def close(self) -> None:
        pass


def test_request_tracking_init_without_config_wraps_requests() -> None:
    """Upstream's form for a process without Pyramid: the ID it sets goes along with requests."""
    request_tracking.init()
    capture = _Capture()
    with requests.Session() as session:
        session.mount("http://", capture)
        token = request_tracking.current_request_id.set("script-1")
        try:
            session.get("http://example.invalid/")
        finally:
            request_tracking.current_request_id.reset(token)
        session.get("http://example.invalid/")
    assert capture.sent == ["script-1", None]


# prometheus.includeme: the metrics feature, which switches the backend on by its settings.


def test_prometheus_includeme_switches_the_backend_on_by_its_settings() -> None:
    config = Configurator(settings={"c2c.prometheus": "true"})
    config.include("c2cwsgiutils.prometheus")
    assert [type(backend) for backend in stats.BACKENDS] == [prometheus.PrometheusBackend]
    assert route_paths(config)["c2c_metrics"] == "/c2c/metrics"


def test_prometheus_includeme_without_its_setting_adds_nothing() -> None:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.prometheus")
    assert stats.BACKENDS == []
    assert "c2c_metrics" not in route_paths(config)


# config_utils.get_base_path: the ops views' prefix.


@pytest.mark.parametrize(
    ("environ", "settings", "expected"),
    [
        ({}, {}, "/c2c"),
        ({}, {"c2c.base_path": "/ops/"}, "/ops"),
        ({"C2C_BASE_PATH": "/from-env"}, {"c2c.base_path": "/ops"}, "/from-env"),
        ({"C2C_BASE_PATH": "/"}, {}, ""),
    ],
)
def test_get_base_path_is_the_ops_views_prefix(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], settings: dict[str, str], expected: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = Configurator(settings=settings)
    assert config_utils.get_base_path(config) == expected == ops_views.base_path(config)


def test_get_base_path_reads_the_setting_ops_views_declares() -> None:
    declaration = ops_views.OpsViewsSettings.declaration("base_path")
    assert (declaration.env, declaration.ini, declaration.default) == (
        "C2C_BASE_PATH",
        "c2c.base_path",
        "/c2c",
    )
    assert declaration.parse is config_utils.parse_base_path


def test_a_bad_base_path_is_refused_as_by_the_ops_views() -> None:
    config = Configurator(settings={"c2c.base_path": "/a b"})
    with pytest.raises(config_utils.SettingError, match=r"^ini key c2c.base_path='/a b': "):
        config_utils.get_base_path(config)


# version: upstream's name of the versions module.


def test_get_version_is_the_git_hash_of_the_versions_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "versions.json"
    path.write_text(json.dumps({"main": {"git_hash": "0123abc", "git_tag": "1.2"}}), encoding="utf-8")
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(path))
    assert version.get_version() == "0123abc"
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(tmp_path / "none.json"))
    assert version.get_version() is None


def test_version_includeme_serves_versions_json(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    content = {"main": {"git_hash": "0123abc"}, "packages": {}}
    path.write_text(json.dumps(content), encoding="utf-8")
    config = Configurator(settings={"c2c.versions_path": str(path)})
    config.include("c2cwsgiutils.version")
    assert webtest.TestApp(config.make_wsgi_app()).get("/c2c/versions.json").json == content


# The enumerations' members are upstream's, with its values.


def test_cache_expected_is_upstream_s() -> None:
    assert {member.name: member.value for member in CacheExpected} == {"NO": 0, "YES": 1, "DONT_CARE": 2}
