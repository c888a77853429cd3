"""The secret guard of ops views (add_ops_view(secret=...)) and the original's auth helpers."""

import dataclasses
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils import auth
from c2cwsgiutils.config_utils import SettingsGroup, setting
from c2cwsgiutils.ops_views import add_ops_view


@dataclasses.dataclass(frozen=True)
class ProbeSettings(SettingsGroup):
    """A protected view's secret, as a feature declares it."""

    TITLE = "Probe"

    secret: str | None = setting(
        "C2C_TEST_PROBE_SECRET", "c2c.test_probe_secret", None, "Probe.", secret=True
    )


def probe_view(request: Request) -> dict[str, bool]:
    return {"revealed": True}


def make_app(settings: dict[str, str]) -> webtest.TestApp:
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    add_ops_view(
        config, "probe", "/probe", probe_view, secret=ProbeSettings.declaration("secret"), renderer="json"
    )
    return webtest.TestApp(config.make_wsgi_app())


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> webtest.TestApp:
    monkeypatch.delenv("C2C_TEST_PROBE_SECRET", raising=False)
    return make_app({"c2c.test_probe_secret": "s3cret"})


def test_view_is_off_without_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_TEST_PROBE_SECRET", raising=False)
    app = make_app({})
    app.get("/c2c/probe", status=404)
    assert "probe" not in app.get("/c2c/").json["views"]


def test_view_is_listed_when_on(app: webtest.TestApp) -> None:
    assert app.get("/c2c/").json["views"]["probe"] == "/c2c/probe"


def test_missing_secret_is_403_json(app: webtest.TestApp) -> None:
    response = app.get("/c2c/probe", status=403)
    assert response.json["status"] == 403
    assert "X-API-Key" in response.json["message"]


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"X-API-Key": "wrong"}, ""), ({}, "?secret=wrong"), ({}, "?secret="), ({"X-API-Key": "s3cre"}, "")],
)
def test_wrong_secret_is_403(app: webtest.TestApp, headers: dict[str, str], query: str) -> None:
    app.get("/c2c/probe" + query, headers=headers, status=403)


def test_secret_in_header_opens_the_view(app: webtest.TestApp) -> None:
    assert app.get("/c2c/probe", headers={"X-API-Key": "s3cret"}).json == {"revealed": True}


def test_secret_in_query_opens_the_view(app: webtest.TestApp) -> None:
    assert app.get("/c2c/probe?secret=s3cret").json == {"revealed": True}


def test_environment_secret_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_TEST_PROBE_SECRET", "from-env")
    app = make_app({"c2c.test_probe_secret": "from-ini"})
    app.get("/c2c/probe", headers={"X-API-Key": "from-ini"}, status=403)
    app.get("/c2c/probe", headers={"X-API-Key": "from-env"}, status=200)


def test_non_ascii_secret_is_compared_without_error(app: webtest.TestApp) -> None:
    app.get("/c2c/probe", headers={"X-API-Key": "s\u00e9cret".encode().decode("latin-1")}, status=403)


def test_original_is_auth_and_auth_view(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_TEST_PROBE_SECRET", "k")
    request: Any = Request.blank("/?secret=k")
    request.registry = Configurator(settings={}).registry
    request.registry.settings = {}
    assert auth.is_auth(request, "C2C_TEST_PROBE_SECRET", "c2c.x") is True
    auth.auth_view(request, "C2C_TEST_PROBE_SECRET", "c2c.x")
    request = Request.blank("/")
    request.registry = Configurator(settings={}).registry
    request.registry.settings = {}
    with pytest.raises(Exception, match="missing or wrong secret"):
        auth.auth_view(request, "C2C_TEST_PROBE_SECRET", "c2c.x")
