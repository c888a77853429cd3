import json
import subprocess
import sys
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.interfaces import ITweens

import c2cwsgiutils.pyramid
from tests.apps import make_app


def test_include_by_callable_as_the_spec_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_BASE_PATH", raising=False)
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    app = webtest.TestApp(config.make_wsgi_app())
    missing = app.get("/nowhere", headers={"X-Request-ID": "by-callable"}, status=404)
    assert missing.json["status"] == 404  # the JSON error views
    assert missing.headers["X-Request-ID"] == "by-callable"  # request tracking
    assert app.get("/c2c/").json["base_path"] == "/c2c"  # the ops index


def test_including_twice_is_harmless() -> None:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.include("c2cwsgiutils.pyramid")
    config.include("c2cwsgiutils.errors")
    app = config.make_wsgi_app()
    tweens = [name for name, _ in app.registry.getUtility(ITweens).implicit()]
    assert tweens.count("c2cwsgiutils.request_tracking.tween_factory") == 1


def test_each_feature_has_its_own_include(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(include="c2cwsgiutils.errors")
    response = app.get("/nowhere", status=404)
    assert response.json["status"] == 404
    assert "X-Request-ID" not in response.headers


def test_index_lists_the_base_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_BASE_PATH", raising=False)
    assert make_app().get("/c2c/").json["base_path"] == "/c2c"


def test_index_answers_without_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_BASE_PATH", raising=False)
    assert make_app().get("/c2c").status_code == 200


def test_base_path_moves_the_ops_views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_BASE_PATH", "/ops")
    app = make_app()
    assert app.get("/ops/").json["base_path"] == "/ops"
    app.get("/c2c/", status=404)


def test_ini_base_path_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_BASE_PATH", raising=False)
    assert make_app(settings={"c2c.base_path": "/admin"}).get("/admin/").status_code == 200


def test_bad_setting_fails_at_include_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVELOPMENT", "sometimes")
    with pytest.raises(Exception, match="DEVELOPMENT='sometimes'"):
        make_app()


IMPORT_PROBE = """
import importlib, json, logging, os, pkgutil, sys, threading
import requests
import c2cwsgiutils

send = requests.Session.send
environ = dict(os.environ)
threads = threading.active_count()
handlers = list(logging.root.handlers)
levels = {name: logging.getLogger(name).level for name in ("", "c2cwsgiutils")}
names = []
for module in pkgutil.walk_packages(c2cwsgiutils.__path__, "c2cwsgiutils."):
    if module.name == "c2cwsgiutils.gunicorn_config":
        continue  # a gunicorn configuration file: reading the environment is its purpose
    importlib.import_module(module.name)
    names.append(module.name)
print(json.dumps({
    "modules": names,
    "requests_patched": requests.Session.send is not send,
    "environ_changed": dict(os.environ) != environ,
    "threads_started": threading.active_count() - threads,
    "handlers_changed": list(logging.root.handlers) != handlers,
    "levels_changed": {name: logging.getLogger(name).level for name in levels} != levels,
}))
"""


@pytest.fixture(scope="module")
def import_probe() -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def test_probe_imports_every_module(import_probe: dict[str, Any]) -> None:
    assert {"c2cwsgiutils.pyramid", "c2cwsgiutils.errors", "c2cwsgiutils.scripts.run"} <= set(
        import_probe["modules"]
    )


@pytest.mark.parametrize(
    "effect", ["requests_patched", "environ_changed", "threads_started", "handlers_changed", "levels_changed"]
)
def test_importing_has_no_side_effect(import_probe: dict[str, Any], effect: str) -> None:
    assert not import_probe[effect]
