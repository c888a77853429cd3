"""c2cwsgiutils.index as c2cgeoportal 2.9 uses it: the app's fragments on the ops page, and the helpers.

The three module-level values are process-wide: every test gets fresh ones (the ``fresh_index``
fixture), and the originals are put back after it.
"""

import logging
import re
from typing import Any

import pytest
import webtest

import c2cwsgiutils.index
from c2cwsgiutils import index
from c2cwsgiutils.ops_page import CONTENT_SECURITY_POLICY
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from tests.apps import make_app

SECRET = "index-s3cret"  # noqa: S105 (made up)
HTML = {"Accept": "text/html"}
HTTPS = {"wsgi.url_scheme": "https"}
HOSTILE = "\"'><script>alert(1)</script>&"
HOSTILE_ESCAPED = "&quot;&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;"

pytestmark = pytest.mark.usefixtures("clean_ops_state")


@pytest.fixture(autouse=True)
def fresh_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh additional_* values and warnings for the test; the process's own are restored after."""
    monkeypatch.setattr(index, "additional_title", None)
    monkeypatch.setattr(index, "additional_noauth", [])
    monkeypatch.setattr(index, "additional_auth", [])
    monkeypatch.setattr(index, "_WARN", RateLimitedWarning(logger=logging.getLogger(index.__name__)))


@pytest.fixture
def app() -> webtest.TestApp:
    return make_app(settings={"c2c.log_view_secret": SECRET})


def page(app: webtest.TestApp) -> str:
    response = app.get("/c2c/", headers=HTML, extra_environ=HTTPS)
    assert response.content_type == "text/html"
    text: str = response.text
    return text


def app_card(app: webtest.TestApp) -> str:
    """Return the inside of the page's card of the app's fragments ("" when there is none)."""
    found = re.search(r'<section class="card wide app" id="app"[^>]*>(.*?)</section>', page(app), re.S)
    return found.group(1) if found else ""


def sign_in(app: webtest.TestApp) -> None:
    app.post("/c2c/page/login", {"secret": SECRET}, extra_environ=HTTPS, status=303)


# The helpers.


def test_section_escapes_its_title_and_keeps_its_content() -> None:
    result = index.section(HOSTILE, "<p>one</p>", "<p>two</p>")
    assert result == f'<div class="row"><h2>{HOSTILE_ESCAPED}</h2><p>one</p>\n<p>two</p></div><hr>'


def test_section_without_separator() -> None:
    assert index.section("Title", sep=False) == '<div class="row"><h2>Title</h2></div>'


def test_paragraph_escapes_its_title_and_keeps_its_content() -> None:
    assert index.paragraph("<b>a</b>", "b", title=HOSTILE) == f"<p>{HOSTILE_ESCAPED}: <b>a</b>\nb</p>"
    assert index.paragraph("text") == "<p>text</p>"


def test_link_structure() -> None:
    assert index.link("../admin/", "Admin") == (
        '<a href="../admin/" class="btn btn-primary" target="_blank">Admin</a>'
    )
    assert index.link("/x", "X", cssclass="", target="") == '<a href="/x">X</a>'


def test_link_without_url_is_empty() -> None:
    assert index.link(None, "Nothing") == ""


def test_link_escapes_label_url_and_attributes() -> None:
    result = index.link(f"https://example.com/?q={HOSTILE}", HOSTILE, cssclass=HOSTILE, target=HOSTILE)
    assert "<script>" not in result
    assert result == (
        f'<a href="https://example.com/?q={HOSTILE_ESCAPED}" class="{HOSTILE_ESCAPED}" '
        f'target="{HOSTILE_ESCAPED}">{HOSTILE_ESCAPED}</a>'
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " \x01javascript:alert(1)",
        "java\tscript:alert(1)",
        "jav\nascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_link_and_form_refuse_unsafe_urls(url: str) -> None:
    with pytest.raises(ValueError, match="only http, https and relative URLs"):
        index.link(url, "click")
    with pytest.raises(ValueError, match="only http, https and relative URLs"):
        index.form(url, index.button("Go"))


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a", "HTTP://example.com", "../tiles/admin/", "/c2c/x", "?a=1", "#top", "//h/x"],
)
def test_link_accepts_http_https_and_relative_urls(url: str) -> None:
    assert f'href="{url}"' in index.link(url, "ok")


def test_a_percent_encoded_scheme_is_a_relative_path() -> None:
    # Browsers do not decode a scheme: this is a path under the page, not script.
    assert 'href="javascript%3Aalert(1)"' in index.link("javascript%3Aalert(1)", "ok")


def test_form_get_structure() -> None:
    result = index.form("/x", "<i>content</i>")
    assert result == '<form action="/x" target="_blank"><i>content</i></form>'


def test_form_post_is_multipart() -> None:
    result = index.form("../invalidate", index.button("Go"), method="post", target="_self")
    assert result.startswith(
        '<form action="../invalidate" target="_self" method="post" enctype="multipart/form-data">'
    )


def test_form_escapes_its_url_and_target() -> None:
    result = index.form(f"/x?{HOSTILE}", target=HOSTILE)
    assert result == f'<form action="/x?{HOSTILE_ESCAPED}" target="{HOSTILE_ESCAPED}"></form>'


def test_form_needs_a_url_and_a_known_method() -> None:
    with pytest.raises(ValueError, match="a URL is needed"):
        index.form(None)
    with pytest.raises(ValueError, match="method is get or post"):
        index.form("/x", method="delete")


def test_input_text_with_a_label_made_from_the_name() -> None:
    result = index.input_("max_level", value="3")
    (id_,) = set(re.findall(r'(?:id|for)="([^"]+)"', result))
    assert result == (
        f'<div class="row mb-3"><label class="col-sm-2 col-form-label" for="{id_}">Max level</label>'
        f'<div class="col-sm-10"><input class="form-control" type="text" name="max_level" value="3" '
        f'id="{id_}"></div></div>'
    )


@pytest.mark.parametrize(("value", "type_"), [("a", "text"), (3, "number"), (True, "checkbox")])
def test_input_type_follows_the_value(value: str | int, type_: str) -> None:
    assert f'type="{type_}"' in index.input_("field", value=value)


def test_input_checkbox_is_checked_by_a_true_value() -> None:
    assert " checked>" in index.input_("on", value=True)
    assert "checked" not in index.input_("on", value=False)
    assert 'value="true"' in index.input_("on", type_="checkbox")


def test_hidden_input_has_no_label() -> None:
    result = index.input_("token", type_="hidden", value="x")
    assert "<label" not in result
    assert 'type="hidden" name="token" value="x"' in result


def test_input_escapes_every_value() -> None:
    result = index.input_(HOSTILE, label=HOSTILE, type_=HOSTILE, value=HOSTILE)
    assert "<script>" not in result
    assert result.count(HOSTILE_ESCAPED) == 4
    checkbox = index.input_(HOSTILE, label=HOSTILE, type_="checkbox")
    assert "<script>" not in checkbox
    assert checkbox.count(HOSTILE_ESCAPED) == 2


def test_input_ids_are_unique() -> None:
    ids = {re.search(r'id="([^"]+)"', index.input_("same")).group(1) for _ in range(5)}  # type: ignore[union-attr]
    assert len(ids) == 5


def test_button_escapes_its_label() -> None:
    assert (
        index.button(HOSTILE) == f'<button class="btn btn-primary" type="submit">{HOSTILE_ESCAPED}</button>'
    )


# The page.


def test_no_card_without_fragments(app: webtest.TestApp) -> None:
    assert 'id="app"' not in page(app)


def test_noauth_fragments_are_shown_to_everyone(app: webtest.TestApp) -> None:
    index.additional_noauth.append('<a href="../admin/">Admin</a>')
    assert app_card(app) == '<a href="../admin/">Admin</a>'


def test_auth_fragments_are_not_shown_before_sign_in(app: webtest.TestApp) -> None:
    index.additional_auth.append('<a href="../memory">Memory status</a>')
    index.additional_title = "<h2>Title</h2>"
    text = page(app)
    assert "Memory status" not in text
    # Nothing follows the title for this visitor: no title either (as in the original).
    assert "<h2>Title</h2>" not in text


def test_auth_fragments_are_shown_after_sign_in(app: webtest.TestApp) -> None:
    index.additional_auth.append('<a href="../memory">Memory status</a>')
    sign_in(app)
    assert app_card(app) == '<a href="../memory">Memory status</a>'


def test_auth_fragments_are_hidden_again_after_sign_out(app: webtest.TestApp) -> None:
    index.additional_auth.append('<a href="../memory">Memory status</a>')
    sign_in(app)
    app.post("/c2c/page/logout", extra_environ=HTTPS, status=303)
    assert "Memory status" not in page(app)


def test_auth_fragments_are_shown_to_the_holder_of_c2c_secret() -> None:
    app = make_app(settings={"c2c.secret": SECRET})
    index.additional_auth.append('<a href="../memory">Memory status</a>')
    assert "Memory status" not in page(app)
    response = app.get("/c2c/", headers={**HTML, "X-API-Key": SECRET}, extra_environ=HTTPS)
    assert "Memory status" in response.text


def test_the_page_is_included_by_the_original_name() -> None:
    app = make_app(include="c2cwsgiutils.index")
    index.additional_noauth.append("<p>included</p>")
    assert app_card(app) == "<p>included</p>"


def test_the_json_index_has_no_fragments(app: webtest.TestApp) -> None:
    index.additional_title = "<h2>Title</h2>"
    index.additional_noauth.append("<p>noauth</p>")
    sign_in(app)
    response = app.get("/c2c/", extra_environ=HTTPS)
    assert response.content_type == "application/json"
    assert set(response.json) == {"base_path", "views"}
    assert b"noauth" not in response.body
    assert b"Title" not in response.body


def test_the_c2cgeoportal_pattern(app: webtest.TestApp) -> None:
    """c2cgeoportal_geoportal 2.9's includeme, verbatim but for the interfaces loop's settings."""
    c2cwsgiutils.index.additional_title = (
        '<div class="row"><div class="col-lg-3"><h2>GeoMapFish</h2></div><div class="col-lg">'
    )

    c2cwsgiutils.index.additional_auth.extend(
        [
            '<a href="../tiles/admin/">TileCloud chain admin</a><br>',
            '<a href="../tiles/c2c/">TileCloud chain c2c tools</a><br>',
            '<a href="../invalidate">Invalidate the cache</a><br>',
            '<a href="../memory">Memory status</a><br>',
        ]
    )
    c2cwsgiutils.index.additional_noauth.append('<a href="../admin/">Admin</a><br>')

    c2cwsgiutils.index.additional_noauth.append(
        '</div></div><div class="row"><div class="col-lg-3"><h3>Interfaces</h3></div><div class="col-lg">'
    )
    c2cwsgiutils.index.additional_noauth.append('<a href="../">Default</a><br>')
    interfaces: list[dict[str, Any]] = [{"name": "desktop", "default": True}, {"name": "mobile"}]
    for interface in interfaces:
        if not interface.get("default", False):
            c2cwsgiutils.index.additional_noauth.append(
                '<a href="../{interface}">{interface}</a><br>'.format(interface=interface["name"])
            )
    c2cwsgiutils.index.additional_noauth.append('<a href="../apihelp/index.html">API help</a><br>')
    c2cwsgiutils.index.additional_noauth.append("</div></div><hr>")

    visitor = app_card(app)
    assert visitor.startswith('<div class="row"><div class="col-lg-3"><h2>GeoMapFish</h2>')
    assert "TileCloud chain admin" not in visitor
    assert '<a href="../mobile">mobile</a>' in visitor
    assert visitor.endswith("</div></div><hr>")

    sign_in(app)
    operator = app_card(app)
    order = ["GeoMapFish", "TileCloud chain admin", "Memory status", "Admin", "Interfaces", "API help"]
    positions = [operator.index(text) for text in order]
    assert positions == sorted(positions)
    # The page around the card is whole: the table of views still follows it.
    assert "Every ops view" in page(app).split('id="app"', 1)[1]


def test_helper_fragments_escape_on_the_page(app: webtest.TestApp) -> None:
    index.additional_noauth.append(
        index.section(
            HOSTILE,
            index.paragraph(index.link("../x", HOSTILE)),
            index.form("../x", index.input_("q", value=HOSTILE), index.button(HOSTILE), method="post"),
        )
    )
    card = app_card(app)
    assert "<script>" not in card
    assert card.count(HOSTILE_ESCAPED) == 4


def test_the_policy_is_the_same_with_fragments(app: webtest.TestApp) -> None:
    index.additional_noauth.append(index.form("../x", index.button("Go")))
    response = app.get("/c2c/", headers=HTML)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "form-action 'self'" in CONTENT_SECURITY_POLICY


def test_odd_items_are_left_out_with_a_warning(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    index.additional_noauth.extend(["<p>one</p>", 42, None, b"<p>bytes</p>", "<p>two</p>"])  # type: ignore[list-item]
    with caplog.at_level(logging.WARNING, logger=index.__name__):
        assert app_card(app) == "<p>one</p>\n<p>two</p>"
        assert app_card(app) == "<p>one</p>\n<p>two</p>"
    warnings = [record.getMessage() for record in caplog.records if record.name == index.__name__]
    # Rate-limited: one line for the list, not one per item and page.
    assert warnings == ["c2cwsgiutils.index.additional_noauth holds a int, not a str: left out"]


def test_a_value_that_is_no_list_is_left_out_with_a_warning(
    app: webtest.TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    index.additional_auth = 42  # type: ignore[assignment]
    index.additional_title = ["<h2>listed</h2>"]  # type: ignore[assignment]
    index.additional_noauth = "<p>a str, not a list</p>"  # type: ignore[assignment]
    sign_in(app)
    with caplog.at_level(logging.WARNING, logger=index.__name__):
        assert app_card(app) == "<h2>listed</h2>\n<p>a str, not a list</p>"
    assert "c2cwsgiutils.index.additional_auth is a int, not a list of str: left out" in caplog.messages


def test_the_fragments_are_bounded(
    app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(index, "MAX_FRAGMENTS", 5)
    index.additional_noauth.extend(f"<i>{number}</i>" for number in range(50))
    with caplog.at_level(logging.WARNING, logger=index.__name__):
        card = app_card(app)
    assert card.count("<i>") == 5
    assert any("the rest is left out" in message for message in caplog.messages)


def test_the_characters_are_bounded(app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "MAX_CHARS", 25)
    index.additional_noauth.extend(["<p>0123456789</p>", "<p>0123456789</p>"])
    assert app_card(app) == "<p>0123456789</p>"


def test_reset_puts_the_defaults_back() -> None:
    index.additional_title = "<h2>x</h2>"
    index.additional_noauth.append("<p>x</p>")
    index.additional_auth.append("<p>x</p>")
    index.reset()
    state: tuple[object, ...] = (index.additional_title, index.additional_noauth, index.additional_auth)
    assert state == (None, [], [])
