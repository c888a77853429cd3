"""The ops page's extension points, under upstream c2cwsgiutils' name ``c2cwsgiutils.index``.

The page itself is :mod:`c2cwsgiutils.ops_page` (``{C2C_BASE_PATH}/`` in a browser); this module is
upstream's door onto it. An app adds its own HTML there by setting or appending to three
module-level values, usually in its ``main``::

    import c2cwsgiutils.index

    c2cwsgiutils.index.additional_title = "<h2>My app</h2>"
    c2cwsgiutils.index.additional_noauth.append('<a href="../admin/">Admin</a>')
    c2cwsgiutils.index.additional_auth.extend(['<a href="../invalidate">Invalidate the cache</a>'])

The page shows, in one card: the title (when a fragment follows it, or to a signed-in operator),
the ``additional_auth`` fragments to a signed-in operator only, then the ``additional_noauth``
fragments to everyone. The JSON index has none of them.

The fragments are the app's own, trusted HTML: they are inserted as they are. The helpers below
(:func:`section`, :func:`paragraph`, :func:`link`, :func:`form`, :func:`input_`, :func:`button`)
build fragments from untrusted values: they escape the texts and attribute values they are given,
and refuse a URL that is not http, https or relative. What they are given as ``content`` is
fragments again (trusted HTML, not escaped).

The page's Content-Security-Policy applies to the fragments: no inline script, style attribute or
event handler runs; a form may only submit to the page's own origin; nothing (images, styles) is
loaded from another origin. Plain links and plain forms (what the helpers make) need nothing else.

The three values are process-wide (upstream's API): every app of the process shares them.
Tests call :func:`reset`. ``config.include("c2cwsgiutils.index")`` adds the page, as
``c2cwsgiutils.pyramid`` does.
"""

import html
import itertools
import logging
import re
from collections.abc import Iterator

from pyramid.config import Configurator

from c2cwsgiutils.rate_limited_warning import RateLimitedWarning

__all__ = [
    "additional_auth",
    "additional_noauth",
    "additional_title",
    "button",
    "form",
    "includeme",
    "init",
    "input_",
    "link",
    "paragraph",
    "render_additional",
    "reset",
    "section",
]

_LOG = logging.getLogger(__name__)

additional_title: str | None = None
"""An HTML fragment shown before the others (``None``: none)."""
additional_noauth: list[str] = []
"""HTML fragments shown to everyone."""
additional_auth: list[str] = []
"""HTML fragments shown only to an operator signed in on the page."""

MAX_FRAGMENTS = 1000
"""At most this many fragments are shown (a list an app appends to on every request stays bounded)."""
MAX_CHARS = 1024 * 1024
"""At most this many characters of fragments are shown; the rest is left out with a warning."""

SAFE_SCHEMES = frozenset(("http", "https"))
"""The URL schemes a helper accepts; a URL without a scheme (relative) is accepted too."""

_WARN = RateLimitedWarning(source="c2cwsgiutils index", logger=_LOG)
_IDS = itertools.count()
# What browsers strip from a URL before reading its scheme: tabs and newlines anywhere, C0
# controls and spaces at both ends (the WHATWG URL parser).
_URL_IGNORED = re.compile(r"[\t\n\r]")
_URL_TRIMMED = "".join(chr(code) for code in range(0x21))
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")


def includeme(config: Configurator) -> None:
    """Add the ops page, for apps that include it by upstream's name ``c2cwsgiutils.index``."""
    # By name: the page imports this module for the values above, so this one must not import it.
    config.include("c2cwsgiutils.ops_page")


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.index")``."""
    config.include(includeme)


def reset() -> None:
    """Put the three values back to their defaults (for tests: they are process-wide)."""
    global additional_title, additional_noauth, additional_auth  # noqa: PLW0603 (upstream's API)
    additional_title = None
    additional_noauth = []
    additional_auth = []


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _safe_url(url: str, helper: str) -> str:
    """Return ``url`` as a browser reads it, or raise ValueError unless it is http, https or relative."""
    cleaned = _URL_IGNORED.sub("", str(url)).strip(_URL_TRIMMED)
    scheme = _SCHEME.match(cleaned)
    if scheme is not None and scheme.group(1).lower() not in SAFE_SCHEMES:
        raise ValueError(f"{helper}(): only http, https and relative URLs, not {scheme.group(1)[:20]!r}:")
    return cleaned


def section(title: str, *content: str, sep: bool | None = True) -> str:
    """Return a block with a heading: ``title`` is text (escaped), ``content`` fragments (trusted HTML)."""
    body = "\n".join(content)
    result = f'<div class="row"><h2>{_text(title)}</h2>{body}</div>'
    return result + "<hr>" if sep else result


def paragraph(*content: str, title: str | None = None) -> str:
    """Return a paragraph of fragments (trusted HTML), led by ``title: `` (text, escaped) if given."""
    lead = f"{_text(title)}: " if title else ""
    return f"<p>{lead}{chr(10).join(content)}</p>"


def link(url: str | None, label: str, cssclass: str = "btn btn-primary", target: str = "_blank") -> str:
    """Return a link (``""`` when ``url`` is None); ``label`` and the attributes are escaped.

    Raises ValueError for a URL that is not http, https or relative (``javascript:``, ``data:``...).
    """
    if url is None:
        return ""
    attributes = f' href="{_text(_safe_url(url, "link"))}"'
    if cssclass:
        attributes += f' class="{_text(cssclass)}"'
    if target:
        attributes += f' target="{_text(target)}"'
    return f"<a{attributes}>{_text(label)}</a>"


def form(url: str | None, *content: str, method: str = "get", target: str = "_blank") -> str:
    """Return a form around ``content`` (fragments: trusted HTML) submitting to ``url``.

    ``method`` is ``get`` or ``post`` (sent as ``multipart/form-data``). The page's CSP lets a form
    submit to the page's own origin only. Raises ValueError for a missing or unsafe URL.
    """
    if url is None:
        raise ValueError("form(): a URL is needed")
    method = method.lower()
    if method not in ("get", "post"):
        raise ValueError(f"form(): method is get or post, not {method[:20]!r}")
    attributes = f' action="{_text(_safe_url(url, "form"))}"'
    if target:
        attributes += f' target="{_text(target)}"'
    if method == "post":
        attributes += ' method="post" enctype="multipart/form-data"'
    return f"<form{attributes}>{chr(10).join(content)}</form>"


def input_(name: str, label: str | None = None, type_: str | None = None, value: str | int = "") -> str:
    """Return a labelled input; every value given is escaped.

    Without ``label``, the label is made from ``name`` (none for a hidden input). Without
    ``type_``, it is ``checkbox`` for a bool ``value``, ``number`` for an int, else ``text``. A
    checkbox sends ``true`` when checked, and is checked when ``value`` is true.
    """
    id_ = f"c2c-input-{next(_IDS)}"
    if label is None and type_ != "hidden":
        label = name.replace("_", " ").capitalize()
    if type_ is None:
        type_ = "checkbox" if isinstance(value, bool) else "number" if isinstance(value, int) else "text"
    if type_ == "checkbox":
        checked = " checked" if value else ""
        return (
            f'<div class="form-check"><input class="form-check-input" type="checkbox" name="{_text(name)}"'
            f' value="true" id="{id_}"{checked}><label class="form-check-label" for="{id_}">'
            f"{_text(label or '')}</label></div>"
        )
    field = (
        f'<div class="col-sm-10"><input class="form-control" type="{_text(type_)}" name="{_text(name)}"'
        f' value="{_text(value)}" id="{id_}"></div>'
    )
    if label is None:
        return field
    return (
        f'<div class="row mb-3"><label class="col-sm-2 col-form-label" for="{id_}">{_text(label)}</label>'
        f"{field}</div>"
    )


def button(label: str) -> str:
    """Return a submit button; ``label`` is escaped."""
    return f'<button class="btn btn-primary" type="submit">{_text(label)}</button>'


def _strings(name: str, value: object) -> Iterator[str]:
    """Yield the fragments of one of the three values, leaving out (with a warning) what is not a str."""
    if value is None:
        return
    if isinstance(value, str):
        yield value
        return
    try:
        items = list(itertools.islice(value, MAX_FRAGMENTS + 1))  # type: ignore[call-overload]
    except Exception:  # an app's odd value must not break the page
        _WARN(
            "c2cwsgiutils.index.%s is a %s, not a list of str: left out",
            name,
            type(value).__name__,
            kind=name,
        )
        return
    for item in items:
        if isinstance(item, str):
            yield item
        else:
            _WARN(
                "c2cwsgiutils.index.%s holds a %s, not a str: left out", name, type(item).__name__, kind=name
            )


def render_additional(signed_in: bool) -> str:
    """Return the app's fragments as the page shows them, bounded (empty when there are none).

    The title comes when ``signed_in`` or when ``additional_noauth`` has a fragment (as
    upstream's); then ``additional_auth`` when ``signed_in``; then ``additional_noauth``.
    """
    noauth = list(_strings("additional_noauth", additional_noauth))
    title = list(_strings("additional_title", additional_title)) if signed_in or noauth else []
    auth = list(_strings("additional_auth", additional_auth)) if signed_in else []
    shown: list[str] = []
    size = 0
    for fragment in itertools.chain(title, auth, noauth):
        size += len(fragment)
        if len(shown) >= MAX_FRAGMENTS or size > MAX_CHARS:
            _WARN(
                "c2cwsgiutils.index: more than %d fragments or %d characters: the rest is left out",
                MAX_FRAGMENTS,
                MAX_CHARS,
                kind="size",
            )
            break
        shown.append(fragment)
    return "\n".join(shown)
