"""A client for testing a REST API from pytest: each call checks the status and returns the body.

Every request carries a fresh ``X-Request-ID`` (the header the toolkit's request tracking reads),
so a failing test names the ID to look for in the server's logs.

The methods take the original c2cwsgiutils' arguments in its order, so that its users' suites run
unchanged: ``get(url, expected_status, params, headers, cors, cache_allowed)``,
``post_json(url, data, json, expected_status, ...)``, ``delete(url, expected_status=204, ...)``...
Upstream 6.1's ``cache_expected=`` (a :class:`CacheExpected`) is taken too, as a keyword.
"""

import enum
import importlib
import os
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from xml.etree import ElementTree

import requests

REQUEST_ID_HEADER = "X-Request-ID"
BODY_START = 500
"""How many characters of an unexpected answer's body a failure message shows."""

ExpectedStatus = int | Collection[int]
Headers = Mapping[str, str] | None
Params = Mapping[str, Any] | None
# Cache-Control directives that forbid a cache to reuse the answer without asking again.
_NO_CACHE = ("no-store", "no-cache", "max-age=0", "private")


Schema = str | Path | None


class CacheExpected(enum.Enum):
    """What an answer's ``Cache-Control`` must say: upstream 6.1's form of ``cache_allowed``/``cacheable``."""

    NO = 0
    """It forbids caching (as ``cache_allowed=False``)."""
    YES = 1
    """It allows caching (as ``cacheable=True``)."""
    DONT_CARE = 2
    """Not checked (our default; upstream's methods default to ``NO``)."""


class UnexpectedStatusError(AssertionError):
    """An answer came with a status the test did not expect; the message says everything known."""

    def __init__(self, response: requests.Response, expected: ExpectedStatus, request_id: str) -> None:
        self.response = response
        self.expected = expected
        self.request_id = request_id
        super().__init__(
            f"{response.request.method} {response.url}: expected status {_describe(expected)}, "
            f"got {response.status_code} ({REQUEST_ID_HEADER}: {request_id})\n{body_start(response.text)}"
        )


def _describe(expected: ExpectedStatus) -> str:
    if isinstance(expected, int):
        return str(expected)
    return "one of " + ", ".join(str(status) for status in sorted(expected))


def body_start(text: str, limit: int = BODY_START) -> str:
    """Return ``body: ...`` with the first ``limit`` characters of a body, saying when it is cut."""
    if not text:
        return "body: (empty)"
    if len(text) <= limit:
        return f"body: {text}"
    return f"body (first {limit} of {len(text)} characters): {text[:limit]}"


class Connection:
    """Requests to one app, on a :class:`requests.Session` (connections are reused).

    ``url`` arguments are paths joined to ``base_url`` (absolute URLs are used as they are).
    Every method takes ``expected_status`` (an int or a set of them; a wrong status raises
    :class:`UnexpectedStatusError`), ``headers``, ``cors`` (send ``Origin: {origin}`` and check
    that ``Access-Control-Allow-Origin`` allows it), ``cache_allowed`` (``False``: the answer's
    ``Cache-Control`` must forbid caching; ``True`` or ``None``: not checked, as the original's
    ``True``) and ``cacheable`` (``True``: the answer must allow caching), or upstream 6.1's
    ``cache_expected`` (:class:`CacheExpected`) for either. Other keyword arguments go to
    :meth:`requests.Session.request` (``params``, ``allow_redirects``, ``data``...).

    ``cors`` and ``cache_allowed`` are not checked unless asked, where the original checked both
    by default: a suite written for it passes here too, and a new one says what it means to check.
    """

    def __init__(
        self,
        base_url: str,
        origin: str = "http://localhost",
        *,
        timeout: float = 30.0,
        request_id_prefix: str = "test",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin
        self.timeout = timeout
        self.request_id_prefix = request_id_prefix
        self.session = requests.Session()
        self.last_request_id: str | None = None
        """The request ID sent with the latest call: look for it in the server's logs."""

    def url(self, url: str) -> str:
        """Return the absolute URL of a path on the app."""
        if url.startswith(("http://", "https://")):
            return url
        if not url or url.startswith("?"):
            return self.base_url + url
        return f"{self.base_url}/{url.lstrip('/')}"

    def request(
        self,
        method: str,
        url: str,
        *,
        expected_status: ExpectedStatus = 200,
        params: Params = None,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        cacheable: bool = False,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> requests.Response:
        """Make one request, check its status, CORS and caching answers, and return the response."""
        all_headers = dict(headers or {})
        request_id = next(
            (value for name, value in all_headers.items() if name.lower() == REQUEST_ID_HEADER.lower()), None
        )
        if request_id is None:
            request_id = f"{self.request_id_prefix}-{uuid.uuid4().hex}"
            all_headers[REQUEST_ID_HEADER] = request_id
        if cors:
            all_headers.setdefault("Origin", self.origin)
        self.last_request_id = request_id
        kwargs.setdefault("timeout", self.timeout)
        response = self.session.request(method, self.url(url), params=params, headers=all_headers, **kwargs)
        _check_status(response, expected_status, request_id)
        if cors:
            self._check_cors(response, request_id)
        _check_cache(response, *_cache_checks(cache_allowed, cacheable, cache_expected), request_id)
        return response

    def _check_cors(self, response: requests.Response, request_id: str) -> None:
        allowed = response.headers.get("Access-Control-Allow-Origin")
        if allowed not in (self.origin, "*"):
            raise AssertionError(
                f"{response.request.method} {response.url}: Access-Control-Allow-Origin is {allowed!r}, "
                f"expected {self.origin!r} or '*' ({REQUEST_ID_HEADER}: {request_id})"
            )

    def get_raw(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        expected_status: ExpectedStatus = 200,
        params: Params = None,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> requests.Response:
        """GET and return the :class:`requests.Response`."""
        return self.request(
            "GET",
            url,
            expected_status=expected_status,
            params=params,
            headers=headers,
            cors=cors,
            cache_allowed=cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        )

    def get(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        expected_status: ExpectedStatus = 200,
        params: Params = None,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> str:
        """GET and return the body as text."""
        return self.get_raw(
            url,
            expected_status,
            params,
            headers,
            cors,
            cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        ).text

    def get_json(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        expected_status: ExpectedStatus = 200,
        params: Params = None,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> Any:
        """GET and return the JSON body, parsed."""
        return self.get_raw(
            url,
            expected_status,
            params,
            headers,
            cors,
            cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        ).json()

    def get_xml(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        schema: Schema = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        params: Params = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> "ElementTree.ElementTree[ElementTree.Element]":
        """GET and return the XML document (``.getroot()`` is its root element).

        With ``schema`` (the path of an XML Schema file) the document must be valid, as lxml
        (which must then be installed) says. The document is parsed with the standard library,
        which trusts it: use it on your own app.
        """
        response = self.get_raw(
            url,
            expected_status,
            params,
            headers,
            cors,
            cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        )
        if schema is not None:
            _validate(response.content, schema, f"GET {response.url}")
        return ElementTree.ElementTree(ElementTree.fromstring(response.content))  # noqa: S314

    def post(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        data: Any = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> str:
        """POST ``data`` (bytes, text or a form mapping) and return the body as text."""
        return self.request(
            "POST",
            url,
            data=data,
            expected_status=expected_status,
            headers=headers,
            cors=cors,
            cache_allowed=cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        ).text

    def post_json(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        data: Any = None,
        json: Any = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> Any:
        """POST and return the answer, parsed: ``json`` is sent as a JSON body, ``data`` as it is.

        ``data`` (the second positional argument, as in the original) goes to :mod:`requests`
        unchanged: a mapping is sent as a form, text or bytes as the body.
        """
        return _parsed(
            self.request(
                "POST",
                url,
                data=data,
                json=json,
                expected_status=expected_status,
                headers=headers,
                cors=cors,
                cache_allowed=cache_allowed,
                cache_expected=cache_expected,
                **kwargs,
            )
        )

    def post_files(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        data: Any = None,
        files: Any = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> Any:
        """POST a multipart form (``files`` as :mod:`requests` takes them); return the parsed answer."""
        return _parsed(
            self.request(
                "POST",
                url,
                data=data,
                files=files,
                expected_status=expected_status,
                headers=headers,
                cors=cors,
                cache_allowed=cache_allowed,
                cache_expected=cache_expected,
                **kwargs,
            )
        )

    def put_json(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        json: Any = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> Any:
        """PUT ``json`` as a JSON body and return the answer, parsed."""
        return _parsed(
            self.request(
                "PUT",
                url,
                json=json,
                expected_status=expected_status,
                headers=headers,
                cors=cors,
                cache_allowed=cache_allowed,
                cache_expected=cache_expected,
                **kwargs,
            )
        )

    def patch_json(  # noqa: PLR0917 (the original's positional arguments)
        self,
        url: str,
        json: Any = None,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> Any:
        """PATCH ``json`` as a JSON body and return the answer, parsed."""
        return _parsed(
            self.request(
                "PATCH",
                url,
                json=json,
                expected_status=expected_status,
                headers=headers,
                cors=cors,
                cache_allowed=cache_allowed,
                cache_expected=cache_expected,
                **kwargs,
            )
        )

    def delete(
        self,
        url: str,
        expected_status: ExpectedStatus = 204,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> requests.Response:
        """DELETE and return the response; 204 (No Content) is expected unless told otherwise."""
        return self.request(
            "DELETE",
            url,
            expected_status=expected_status,
            headers=headers,
            cors=cors,
            cache_allowed=cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        )

    def options(
        self,
        url: str,
        expected_status: ExpectedStatus = 200,
        headers: Headers = None,
        cors: bool = False,
        cache_allowed: bool | None = None,
        *,
        cache_expected: CacheExpected = CacheExpected.DONT_CARE,
        **kwargs: Any,
    ) -> requests.Response:
        """OPTIONS and return the response (its headers are the answer)."""
        return self.request(
            "OPTIONS",
            url,
            expected_status=expected_status,
            headers=headers,
            cors=cors,
            cache_allowed=cache_allowed,
            cache_expected=cache_expected,
            **kwargs,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_response(
    r: requests.Response,
    expected_status: ExpectedStatus = 200,
    cache_allowed: bool | CacheExpected | None = True,
    *,
    cacheable: bool = False,
    cache_expected: CacheExpected = CacheExpected.DONT_CARE,
) -> None:
    """Check a response's status and, with ``cache_allowed=False``, that it forbids caching.

    The original's module-level check, for responses got without :class:`Connection`. A failure
    is an :class:`AssertionError` that names the request and its ``X-Request-ID``. Upstream 6.1's
    ``cache_expected`` is taken as a keyword or, as in upstream's signature, third.
    """
    allowed: bool | None = True
    if isinstance(cache_allowed, CacheExpected):
        cache_expected = cache_allowed
    else:
        allowed = cache_allowed
    request_id = _request_id(r)
    _check_status(r, expected_status, request_id)
    _check_cache(r, *_cache_checks(allowed, cacheable, cache_expected), request_id)


def _cache_checks(
    cache_allowed: bool | None, cacheable: bool, cache_expected: CacheExpected
) -> tuple[bool | None, bool]:
    """Return ``(cache_allowed, cacheable)`` with upstream 6.1's ``cache_expected`` folded in."""
    if cache_expected is CacheExpected.NO:
        return False, cacheable
    if cache_expected is CacheExpected.YES:
        return cache_allowed, True
    return cache_allowed, cacheable


def _request_id(response: requests.Response) -> str:
    """Return the request ID sent with the request (or, failing that, the one the app answered)."""
    sent = response.request.headers.get(REQUEST_ID_HEADER) if response.request is not None else None
    return str(sent or response.headers.get(REQUEST_ID_HEADER) or "none")


def _check_status(response: requests.Response, expected_status: ExpectedStatus, request_id: str) -> None:
    statuses = (expected_status,) if isinstance(expected_status, int) else expected_status
    if response.status_code not in statuses:
        raise UnexpectedStatusError(response, expected_status, request_id)


def _check_cache(
    response: requests.Response, cache_allowed: bool | None, cacheable: bool, request_id: str
) -> None:
    """Check that ``Cache-Control`` forbids caching (``cache_allowed=False``) or allows it (``cacheable``)."""
    if cache_allowed is not False and not cacheable:
        return
    cache_control = response.headers.get("Cache-Control", "")
    directives = {directive.strip().lower() for directive in cache_control.split(",")}
    forbidden = any(directive in directives for directive in _NO_CACHE)
    if cache_allowed is False and not forbidden:
        wanted = "forbid"
    elif cacheable and forbidden:
        wanted = "allow"
    else:
        return
    raise AssertionError(
        f"{response.request.method} {response.url}: Cache-Control {cache_control!r} does not "
        f"{wanted} caching ({REQUEST_ID_HEADER}: {request_id})"
    )


def _validate(content: bytes, schema: str | os.PathLike[str], what: str) -> None:
    """Raise AssertionError unless ``content`` is valid for the XML Schema file ``schema`` (with lxml)."""
    try:
        etree: Any = importlib.import_module("lxml.etree")  # only the schema check needs it
    except ImportError:
        raise ImportError(
            "get_xml(schema=...) validates with lxml, which is not installed: pip install lxml"
        ) from None
    # No entity expansion, no network: the document and the schema are read as they are.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    xml_schema = etree.XMLSchema(etree.parse(os.fspath(schema), parser))
    document = etree.fromstring(content, parser)
    if not xml_schema.validate(document):
        raise AssertionError(f"{what}: not valid for {os.fspath(schema)}: {xml_schema.error_log}")


def _parsed(response: requests.Response) -> Any:
    """Return a JSON body parsed, no body as None, any other body as text."""
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text
