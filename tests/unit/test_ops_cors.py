"""Every ops view answers CORS requests with Allow-Origin * and never with credentials."""

import pytest
import webtest

from tests.apps import make_app

ORIGIN = {"Origin": "https://dashboard.example"}
SETTINGS = {
    "c2c.log_view_secret": "log",
    "c2c.debug_view_secret": "debug",
    "c2c.stats_view": "true",
}


pytestmark = pytest.mark.usefixtures("clean_ops_state")


@pytest.fixture
def app() -> webtest.TestApp:
    return make_app(settings=SETTINGS)


def views(app: webtest.TestApp) -> dict[str, str]:
    found: dict[str, str] = app.get("/c2c/").json["views"]
    return {"index": "/c2c/", **found}


def assert_cors(response: webtest.TestResponse) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_the_fixture_switches_several_views_on(app: webtest.TestApp) -> None:
    assert {"logging_level", "debug_stacks", "health"} <= set(views(app))


def test_every_ops_view_answers_a_preflight(app: webtest.TestApp) -> None:
    for name, path in views(app).items():
        response = app.options(
            path,
            headers={
                **ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-api-key",
            },
            status=204,
        )
        assert_cors(response)
        assert "GET" in response.headers["Access-Control-Allow-Methods"], name
        assert "X-API-Key" in response.headers["Access-Control-Allow-Headers"], name


def test_every_ops_view_lets_any_origin_read_it_without_credentials(app: webtest.TestApp) -> None:
    keys = {"logging_level": "log", **{name: "debug" for name in views(app) if name.startswith("debug_")}}
    for name, path in views(app).items():
        query = "?time=0" if name == "debug_sleep" else ""
        headers = {**ORIGIN, **({"X-API-Key": keys[name]} if name in keys else {})}
        response = app.get(path + query, headers=headers, status="*")
        assert response.status_int < 400, (name, response.status)
        assert_cors(response)


def test_a_refused_request_is_readable_from_another_origin(app: webtest.TestApp) -> None:
    response = app.get("/c2c/logging/level", headers=ORIGIN, status=403)
    assert_cors(response)
    assert response.json["status"] == 403


def test_a_bad_request_is_readable_from_another_origin(app: webtest.TestApp) -> None:
    response = app.get(
        "/c2c/logging/level?name=x&level=LOUD", headers={**ORIGIN, "X-API-Key": "log"}, status=400
    )
    assert_cors(response)


def test_the_preflight_of_a_protected_view_needs_no_secret(app: webtest.TestApp) -> None:
    response = app.options(
        "/c2c/logging/level", headers={**ORIGIN, "Access-Control-Request-Method": "POST"}, status=204
    )
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert response.body == b""


def test_the_page_and_its_sign_in_never_allow_credentials(app: webtest.TestApp) -> None:
    page = app.get("/c2c/", headers={**ORIGIN, "Accept": "text/html"})
    assert_cors(page)
    login = app.options(
        "/c2c/page/login", headers={**ORIGIN, "Access-Control-Request-Method": "POST"}, status=204
    )
    assert_cors(login)


def test_views_of_the_app_get_no_cors_headers() -> None:
    app = make_app(views={"hello": lambda request: {"hello": 1}}, settings=SETTINGS)
    response = app.get("/hello", headers=ORIGIN)
    assert "Access-Control-Allow-Origin" not in response.headers
