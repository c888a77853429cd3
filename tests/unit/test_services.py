"""c2cwsgiutils.services.create: CORS, caching and JSON errors of cornice services (in process).

The browser's view of the same (a page of another origin calling them) is in
tests/test_services_browser.py.
"""

import sys
from typing import Any

import pytest
import webtest

from c2cwsgiutils import services
from tests.apps.services import make_app

ORIGIN = "http://page.example:8000"


@pytest.fixture
def app() -> webtest.TestApp:
    return webtest.TestApp(make_app())


def preflight(app: webtest.TestApp, path: str, method: str = "POST", **kwargs: Any) -> webtest.TestResponse:
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "Content-Type, X-Request-ID",
    }
    return app.options(path, headers=headers, **kwargs)


def test_credentialed_service_echoes_the_origin_and_allows_credentials(app: webtest.TestApp) -> None:
    response = app.get("/with_credentials", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


def test_service_without_credentials_allows_any_origin(app: webtest.TestApp) -> None:
    response = app.get("/without_credentials", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_answers_methods_headers_and_max_age(app: webtest.TestApp) -> None:
    response = preflight(app, "/with_credentials")
    assert response.status_int == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert set(response.headers["Access-Control-Allow-Methods"].split(",")) >= {"GET", "POST"}
    allowed_headers = response.headers["Access-Control-Allow-Headers"].split(",")
    allowed = {header.strip().lower() for header in allowed_headers}
    assert {"content-type", "x-request-id"} <= allowed
    assert response.headers["Access-Control-Max-Age"] == str(services.DEFAULT_MAX_AGE)


def test_preflight_for_a_method_the_service_lacks_is_refused(app: webtest.TestApp) -> None:
    response = preflight(app, "/with_credentials", method="DELETE", status=400)
    assert response.json["status"] == 400
    assert any(error["name"] == "Access-Control-Request-Method" for error in response.json["errors"])


def test_overridden_origins_refuse_another_origin(app: webtest.TestApp) -> None:
    allowed = app.get("/only_from", headers={"Origin": "https://allowed.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://allowed.example"
    refused = app.get("/only_from", headers={"Origin": ORIGIN}, status=400)
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert refused.json["message"] == f"header Origin: {ORIGIN} not allowed"


def test_no_cache_by_default(app: webtest.TestApp) -> None:
    assert app.get("/without_credentials").headers["Cache-Control"] == "no-cache"


def test_a_view_keeps_its_own_caching(app: webtest.TestApp) -> None:
    assert app.get("/cached").headers["Cache-Control"] == "max-age=60, public"


def test_validation_failure_is_a_json_error_with_cornices_list(app: webtest.TestApp) -> None:
    response = app.post("/with_credentials", headers={"Origin": ORIGIN}, status=400)
    body = response.json
    assert body["status"] == 400
    assert body["message"] == "querystring name: name is required"
    assert body["errors"] == [{"location": "querystring", "name": "name", "description": "name is required"}]
    assert body["request_id"] == response.headers["X-Request-ID"]
    # The calling page can read it: the CORS headers are there on errors too.
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_valid_request_reaches_the_view(app: webtest.TestApp) -> None:
    assert app.post("/with_credentials?name=joe").json == {"name": "joe"}


def test_unexpected_error_in_a_service_is_the_toolkits_500_with_cors(app: webtest.TestApp) -> None:
    response = app.put("/without_credentials", headers={"Origin": ORIGIN}, status=500)
    assert response.json["message"] == "Internal server error"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_to_a_plain_route_is_204_without_cors(app: webtest.TestApp) -> None:
    response = preflight(app, "/plain", method="GET", status=204)
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert response.body == b""


def test_options_without_preflight_headers_on_a_plain_route_stays_a_404(app: webtest.TestApp) -> None:
    assert app.options("/plain", status=404).json["status"] == 404


def test_preflight_to_an_unknown_path_stays_a_404(app: webtest.TestApp) -> None:
    assert preflight(app, "/nowhere", status=404).json["status"] == 404


def test_app_that_includes_cornice_itself_after_the_toolkit_keeps_the_json_errors() -> None:
    app = webtest.TestApp(make_app(include_cornice=True))
    assert app.put("/without_credentials", status=500).json["status"] == 500
    assert app.post("/with_credentials", status=400).json["errors"][0]["name"] == "name"


def test_app_without_services_does_not_include_cornice() -> None:
    from pyramid.config import Configurator

    import c2cwsgiutils.pyramid

    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.commit()
    assert not hasattr(config.registry, "cornice_services")


def test_create_passes_cornice_arguments_through() -> None:
    service = services.create(
        "custom", "/custom", cors_max_age=5, cors_headers=("X-Custom",), description="d"
    )
    assert service.cors_max_age == 5
    assert service.cors_headers == ["X-Custom"]
    assert service.description == "d"


def test_create_without_cornice_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from c2cwsgiutils.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "cornice.service", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'c2cwsgiutils\[services\]'"):
        services.create("nothing", "/nothing")
