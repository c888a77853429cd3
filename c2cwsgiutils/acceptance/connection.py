"""A client for testing a REST API from pytest: each call checks the status and returns the body.

Every request carries a fresh ``X-Request-ID`` (the header the toolkit's request tracking reads),
so a failing test names the ID to look for in the server's logs.
"""

import uuid
from collections.abc import Collection, Mapping
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
    :class:`UnexpectedStatusError`), ``params``, ``headers``, ``cors`` (send ``Origin: {origin}`` and
    check that ``Access-Control-Allow-Origin`` allows it) and ``cache_allowed`` (``False``: the
    answer's ``Cache-Control`` must forbid caching; ``True``: it must not; ``None``: not checked).
    Other keyword arguments go to :meth:`requests.Session.request` (``allow_redirects``, ``data``...).
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
        statuses = (expected_status,) if isinstance(expected_status, int) else expected_status
        if response.status_code not in statuses:
            raise UnexpectedStatusError(response, expected_status, request_id)
        if cors:
            self._check_cors(response, request_id)
        if cache_allowed is not None:
            self._check_cache(response, cache_allowed, request_id)
        return response

    def _check_cors(self, response: requests.Response, request_id: str) -> None:
        allowed = response.headers.get("Access-Control-Allow-Origin")
        if allowed not in (self.origin, "*"):
            raise AssertionError(
                f"{response.request.method} {response.url}: Access-Control-Allow-Origin is {allowed!r}, "
                f"expected {self.origin!r} or '*' ({REQUEST_ID_HEADER}: {request_id})"
            )

    @staticmethod
    def _check_cache(response: requests.Response, cache_allowed: bool, request_id: str) -> None:
        cache_control = response.headers.get("Cache-Control", "")
        directives = {directive.strip().lower() for directive in cache_control.split(",")}
        forbidden = any(directive in directives for directive in _NO_CACHE)
        if forbidden == cache_allowed:
            wanted = "allow" if cache_allowed else "forbid"
            raise AssertionError(
                f"{response.request.method} {response.url}: Cache-Control {cache_control!r} does not "
                f"{wanted} caching ({REQUEST_ID_HEADER}: {request_id})"
            )

    def get_raw(self, url: str, **kwargs: Any) -> requests.Response:
        """GET and return the :class:`requests.Response`."""
        return self.request("GET", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> str:
        """GET and return the body as text."""
        return self.request("GET", url, **kwargs).text

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and return the JSON body, parsed."""
        return self.request("GET", url, **kwargs).json()

    def get_xml(self, url: str, **kwargs: Any) -> ElementTree.Element:
        """GET and return the XML body's root element.

        It parses with the standard library, which trusts the document: use it on your own app.
        """
        return ElementTree.fromstring(self.request("GET", url, **kwargs).content)  # noqa: S314

    def post(self, url: str, data: Any = None, **kwargs: Any) -> str:
        """POST ``data`` (bytes, text or a form mapping) and return the body as text."""
        return self.request("POST", url, data=data, **kwargs).text

    def post_json(self, url: str, json: Any = None, **kwargs: Any) -> Any:
        """POST ``json`` as a JSON body and return the answer, parsed."""
        return _parsed(self.request("POST", url, json=json, **kwargs))

    def post_files(self, url: str, data: Any = None, files: Any = None, **kwargs: Any) -> Any:
        """POST a multipart form (``files`` as :mod:`requests` takes them); return the parsed answer."""
        return _parsed(self.request("POST", url, data=data, files=files, **kwargs))

    def put_json(self, url: str, json: Any = None, **kwargs: Any) -> Any:
        """PUT ``json`` as a JSON body and return the answer, parsed."""
        return _parsed(self.request("PUT", url, json=json, **kwargs))

    def patch_json(self, url: str, json: Any = None, **kwargs: Any) -> Any:
        """PATCH ``json`` as a JSON body and return the answer, parsed."""
        return _parsed(self.request("PATCH", url, json=json, **kwargs))

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        """DELETE and return the response (a DELETE often answers 204 with no body)."""
        return self.request("DELETE", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> requests.Response:
        """OPTIONS and return the response (its headers are the answer)."""
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _parsed(response: requests.Response) -> Any:
    """Return a JSON body parsed, no body as None, any other body as text."""
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text
