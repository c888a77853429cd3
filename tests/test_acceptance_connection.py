"""c2cwsgiutils.acceptance.connection against a real app (tests/apps/echo.py) in a process composition.

The module overrides the plugin's ``app_url``, so the plugin's ``connection`` fixture talks to it.
"""

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from c2cwsgiutils.acceptance.composition import ProcessComposition
from c2cwsgiutils.acceptance.connection import (
    CacheExpected,
    Connection,
    UnexpectedStatusError,
    check_response,
)
from tests.apps import echo as echo_app

pytestmark = [pytest.mark.server]

REPO = Path(__file__).parent.parent
SCHEMA = """\
<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="root">
    <xs:complexType><xs:sequence>
      <xs:element name="{item}"><xs:complexType><xs:simpleContent>
        <xs:extension base="xs:string"><xs:attribute name="id" type="xs:integer"/></xs:extension>
      </xs:simpleContent></xs:complexType></xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessComposition]:
    ini = tmp_path_factory.mktemp("echo") / "echo.ini"
    ini.write_text(echo_app.INI, encoding="utf-8")
    with ProcessComposition(ini, env={"PYTHONPATH": str(REPO)}, workers=1) as composition:
        yield composition


@pytest.fixture(scope="module")
def app_url(echo: ProcessComposition) -> str:
    return echo.base_url


def test_get_returns_the_text(connection: Connection) -> None:
    assert connection.get("/echo").startswith('{"method": "GET"')


def test_get_json_returns_the_parsed_body_and_sends_params(connection: Connection) -> None:
    body = connection.get_json("/echo", params={"a": "1"})
    assert (body["method"], body["params"]) == ("GET", {"a": "1"})


def test_get_raw_returns_the_response(connection: Connection) -> None:
    response = connection.get_raw("/echo")
    assert isinstance(response, requests.Response)
    assert response.status_code == 200


def test_get_xml_returns_the_document(connection: Connection) -> None:
    document = connection.get_xml("/xml")
    assert document.getroot().tag == "root"
    assert document.find("item").text == "one"  # type: ignore[union-attr]


def test_get_xml_with_a_schema_needs_lxml(
    connection: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("lxml", "lxml.etree"):  # as if it were not installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"validates with lxml, which is not installed: pip install lxml$"):
        connection.get_xml("/xml", str(tmp_path / "schema.xsd"))


def test_get_xml_validates_against_a_schema(connection: Connection, tmp_path: Path) -> None:
    """The original's ``get_xml(url, schema)``, with lxml (an optional library, in the dev extra)."""
    valid = tmp_path / "valid.xsd"
    valid.write_text(SCHEMA.format(item="item"), encoding="utf-8")
    assert connection.get_xml("/xml", valid).getroot().tag == "root"
    invalid = tmp_path / "invalid.xsd"
    invalid.write_text(SCHEMA.format(item="other"), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"/xml: not valid for .*invalid\.xsd: "):
        connection.get_xml("/xml", invalid)


def test_every_request_sends_a_new_request_id_that_the_app_uses(connection: Connection) -> None:
    first = connection.get_raw("/echo")
    first_id = connection.last_request_id
    second = connection.get_raw("/echo")
    assert first_id is not None
    assert first_id.startswith("test-")
    assert first.json()["headers"]["X-Request-Id"] == first_id
    assert first.headers["X-Request-ID"] == first_id  # what the app's request tracking used
    assert second.headers["X-Request-ID"] == connection.last_request_id != first_id


def test_a_request_id_given_in_headers_is_kept(connection: Connection) -> None:
    response = connection.get_raw("/echo", headers={"x-request-id": "mine-1"})
    assert response.headers["X-Request-ID"] == "mine-1"
    assert connection.last_request_id == "mine-1"


def test_connections_are_reused(connection: Connection) -> None:
    ports = {connection.get_json("/echo")["remote_port"] for _ in range(5)}
    assert len(ports) == 1


def test_headers_are_sent(connection: Connection) -> None:
    assert connection.get_json("/echo", headers={"X-Thing": "yes"})["headers"]["X-Thing"] == "yes"


def test_post_json_put_json_and_patch_json_send_a_json_body(connection: Connection) -> None:
    assert connection.post_json("/echo", json={"a": 1})["json"] == {"a": 1}
    put = connection.put_json("/echo", json=[1, 2])
    patch = connection.patch_json("/echo", json={"b": None})
    assert (put["method"], put["json"]) == ("PUT", [1, 2])
    assert (patch["method"], patch["json"]) == ("PATCH", {"b": None})


def test_post_sends_a_form_and_returns_text(connection: Connection) -> None:
    text = connection.post("/echo", data={"field": "value"})
    assert '"form": {"field": "value"}' in text


def test_post_files_sends_a_multipart_form(connection: Connection) -> None:
    body = connection.post_files("/echo", data={"name": "n"}, files={"upload": ("a.txt", b"content")})
    assert body["files"] == {"upload": "content"}
    assert body["form"] == {"name": "n"}


def test_delete_and_options_return_the_response(connection: Connection) -> None:
    assert connection.delete("/echo", expected_status=200).json()["method"] == "DELETE"
    assert connection.options("/echo").json()["method"] == "OPTIONS"


def test_delete_expects_204_by_default(connection: Connection, app_url: str) -> None:
    assert connection.delete("/echo?status=204").status_code == 204
    with pytest.raises(UnexpectedStatusError, match=r"^DELETE .*/echo: expected status 204, got 200 "):
        connection.delete("/echo")


def test_expected_status_can_be_a_set(connection: Connection) -> None:
    assert connection.get_json("/echo?status=201", expected_status={200, 201})["method"] == "GET"


def test_wrong_status_message_names_method_url_statuses_request_id_and_body(
    connection: Connection, app_url: str
) -> None:
    with pytest.raises(UnexpectedStatusError) as raised:
        connection.post_json("/echo?status=409", json={"a": 1}, headers={"X-Request-ID": "id-409"})
    body = raised.value.response.text
    assert str(raised.value) == (
        f"POST {app_url}/echo?status=409: expected status 200, got 409 (X-Request-ID: id-409)\nbody: {body}"
    )


def test_wrong_status_message_shows_the_start_of_a_long_body(connection: Connection, app_url: str) -> None:
    with pytest.raises(UnexpectedStatusError) as raised:
        connection.get("/echo?status=500&pad=2000", expected_status={200, 204}, headers={"X-Request-ID": "r"})
    body = raised.value.response.text
    assert str(raised.value) == (
        f"GET {app_url}/echo?status=500&pad=2000: expected status one of 200, 204, got 500 "
        f"(X-Request-ID: r)\nbody (first 500 of {len(body)} characters): {body[:500]}"
    )


def test_an_unexpected_status_is_an_assertion_error(connection: Connection) -> None:
    with pytest.raises(AssertionError):
        connection.get("/nowhere")


def test_expected_error_status_returns_the_body(connection: Connection) -> None:
    assert connection.get_json("/nowhere", expected_status=404)["status"] == 404


def test_cors_sends_the_origin_and_accepts_an_allowing_answer(connection: Connection) -> None:
    body = connection.get_json("/echo?cors=1", cors=True)
    assert body["headers"]["Origin"] == connection.origin


def test_cors_fails_when_the_origin_is_not_allowed(connection: Connection, app_url: str) -> None:
    with pytest.raises(AssertionError) as raised:
        connection.get("/echo", cors=True, headers={"X-Request-ID": "c"})
    assert str(raised.value) == (
        f"GET {app_url}/echo: Access-Control-Allow-Origin is None, expected 'http://localhost' or '*' "
        "(X-Request-ID: c)"
    )


def test_cache_allowed_false_accepts_no_store_and_refuses_no_header(
    connection: Connection, app_url: str
) -> None:
    connection.get("/echo?cache=no-store", cache_allowed=False)
    connection.get("/echo?cache=public,%20max-age=0", cache_allowed=False)
    with pytest.raises(AssertionError) as raised:
        connection.get("/echo", cache_allowed=False, headers={"X-Request-ID": "k"})
    assert (
        str(raised.value) == f"GET {app_url}/echo: Cache-Control '' does not forbid caching (X-Request-ID: k)"
    )


def test_cache_allowed_true_is_not_checked(connection: Connection) -> None:
    """The original's ``cache_allowed=True`` means "caching may be allowed", not "must be"."""
    connection.get("/echo?cache=no-cache", cache_allowed=True)
    connection.get("/echo", cache_allowed=True)


def test_cacheable_refuses_no_cache(connection: Connection) -> None:
    connection.get("/echo?cache=max-age=60", cacheable=True)
    with pytest.raises(AssertionError, match="does not allow caching"):
        connection.get("/echo?cache=no-cache", cacheable=True)


# Upstream 6.1's cache_expected.


def test_cache_expected_no_is_cache_allowed_false(connection: Connection) -> None:
    connection.get("/echo?cache=no-store", cache_expected=CacheExpected.NO)
    with pytest.raises(AssertionError, match="does not forbid caching"):
        connection.get("/echo", cache_expected=CacheExpected.NO)


def test_cache_expected_yes_is_cacheable(connection: Connection) -> None:
    connection.get("/echo?cache=max-age=60", cache_expected=CacheExpected.YES)
    with pytest.raises(AssertionError, match="does not allow caching"):
        connection.get("/echo?cache=no-cache", cache_expected=CacheExpected.YES)


def test_cache_expected_dont_care_checks_nothing_and_is_the_default(connection: Connection) -> None:
    for cache in ("no-cache", "max-age=60"):
        connection.get(f"/echo?cache={cache}", cache_expected=CacheExpected.DONT_CARE)
        connection.get(f"/echo?cache={cache}")


CALLS: dict[str, Callable[[Connection, CacheExpected], Any]] = {
    "get": lambda c, expected: c.get("/echo", cache_expected=expected),
    "get_raw": lambda c, expected: c.get_raw("/echo", cache_expected=expected),
    "get_json": lambda c, expected: c.get_json("/echo", cache_expected=expected),
    "get_xml": lambda c, expected: c.get_xml("/xml", cache_expected=expected),
    "post": lambda c, expected: c.post("/echo", cache_expected=expected),
    "post_json": lambda c, expected: c.post_json("/echo", json={}, cache_expected=expected),
    "post_files": lambda c, expected: c.post_files("/echo", files={"f": b"x"}, cache_expected=expected),
    "put_json": lambda c, expected: c.put_json("/echo", {}, cache_expected=expected),
    "patch_json": lambda c, expected: c.patch_json("/echo", {}, cache_expected=expected),
    "delete": lambda c, expected: c.delete("/echo", 200, cache_expected=expected),
    "options": lambda c, expected: c.options("/echo", cache_expected=expected),
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_method_takes_cache_expected(connection: Connection, method: str) -> None:
    """The methods upstream 6.1 gives it; the answers here have no Cache-Control."""
    CALLS[method](connection, CacheExpected.DONT_CARE)
    with pytest.raises(AssertionError, match="does not forbid caching"):
        CALLS[method](connection, CacheExpected.NO)


def test_check_response_takes_cache_expected_as_keyword_or_third(app_url: str) -> None:
    response = requests.get(f"{app_url}/echo", timeout=10)
    check_response(response, 200, cache_expected=CacheExpected.YES)
    check_response(response, 200, CacheExpected.DONT_CARE)
    with pytest.raises(AssertionError, match="does not forbid caching"):
        check_response(response, 200, cache_expected=CacheExpected.NO)
    with pytest.raises(AssertionError, match="does not forbid caching"):
        check_response(response, 200, CacheExpected.NO)


def test_absolute_urls_are_used_as_they_are(connection: Connection, app_url: str) -> None:
    assert connection.get_json(f"{app_url}/echo")["method"] == "GET"


def test_requests_time_out_by_default(echo: ProcessComposition) -> None:
    with Connection(echo.base_url, timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            impatient.get("/echo?sleep=6")
        assert time.monotonic() - started < 5  # well before the answer, with room for a loaded machine


# The original's call forms: positional arguments in its order, and its module-level check.


def test_connection_takes_base_url_and_origin_positionally(app_url: str) -> None:
    with Connection(app_url, "https://front.example") as positional:
        body = positional.get_json("/echo?cors=1", cors=True)
    assert body["headers"]["Origin"] == "https://front.example"


def test_get_takes_expected_status_second(connection: Connection) -> None:
    assert connection.get("/echo?status=201", 201).startswith('{"method": "GET"')
    with pytest.raises(UnexpectedStatusError, match="expected status 201, got 200"):
        connection.get("/echo", 201)


def test_get_json_and_get_raw_take_status_params_and_headers_positionally(connection: Connection) -> None:
    body = connection.get_json("/echo?status=202", 202, {"a": "1"}, {"X-Thing": "yes"})
    assert (body["params"], body["headers"]["X-Thing"]) == ({"status": "202", "a": "1"}, "yes")
    assert connection.get_raw("/nowhere", 404).status_code == 404


def test_expected_status_can_be_a_tuple(connection: Connection) -> None:
    assert connection.get_json("/echo?status=201", (200, 201))["method"] == "GET"


def test_post_json_second_positional_is_data_sent_as_it_is(connection: Connection) -> None:
    """As in the original, ``data`` goes to requests unchanged: a mapping is a form."""
    assert connection.post_json("/echo", {"field": "value"})["form"] == {"field": "value"}
    text = connection.post_json("/echo", '{"a": 1}', headers={"Content-Type": "application/json"})
    assert text["json"] == {"a": 1}


def test_post_json_takes_json_and_expected_status_positionally(connection: Connection) -> None:
    body = connection.post_json("/echo?status=201", None, {"a": 1}, 201)
    assert (body["method"], body["json"]) == ("POST", {"a": 1})


def test_post_put_and_post_files_take_expected_status_positionally(connection: Connection) -> None:
    assert '"form": {"f": "v"}' in connection.post("/echo?status=202", {"f": "v"}, 202)
    assert connection.put_json("/echo?status=201", [1], 201)["json"] == [1]
    assert connection.patch_json("/echo?status=201", [2], 201)["json"] == [2]
    files = connection.post_files("/echo?status=201", {"n": "1"}, {"upload": ("a.txt", b"x")}, 201)
    assert (files["form"], files["files"]) == ({"n": "1"}, {"upload": "x"})


def test_delete_takes_expected_status_positionally(connection: Connection) -> None:
    assert connection.delete("/echo", 200).json()["method"] == "DELETE"


def test_check_response_checks_a_status(app_url: str) -> None:
    response = requests.get(f"{app_url}/echo?status=201", headers={"X-Request-ID": "cr-1"}, timeout=10)
    check_response(response, 201)
    check_response(response, (200, 201))
    with pytest.raises(AssertionError) as raised:
        check_response(response)
    assert str(raised.value).startswith(
        f"GET {app_url}/echo?status=201: expected status 200, got 201 (X-Request-ID: cr-1)\nbody: "
    )


def test_check_response_checks_caching_only_when_told(app_url: str) -> None:
    response = requests.get(f"{app_url}/echo", timeout=10)
    check_response(response, 200)  # cache_allowed=True by default: not checked
    with pytest.raises(AssertionError, match="does not forbid caching"):
        check_response(response, 200, cache_allowed=False)
    check_response(requests.get(f"{app_url}/echo?cache=no-cache", timeout=10), 200, False)
