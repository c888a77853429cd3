"""Give every request an ID that follows it through logs and onward calls.

The ID comes from the first request header that holds a usable value, in this order:
``C2C_REQUEST_ID_HEADER`` (if set), ``X-Request-ID``, ``X-Correlation-ID``, ``Request-ID``,
``X-Varnish``; otherwise it is a new UUID. A header value longer than 200 characters or holding a
control character is not trusted (it could forge log lines) and is passed over.

The ID is ``request.c2c_request_id``, it is echoed in the response's ``X-Request-ID`` header, and
while the request runs it is in :data:`current_request_id`, from which log records and outgoing
``requests`` calls pick it up.
"""

import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import requests
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS

from c2cwsgiutils import config as c2c_config
from c2cwsgiutils.include import first_time

DEFAULT_HEADERS = ("X-Request-ID", "X-Correlation-ID", "Request-ID", "X-Varnish")
HEADER = "X-Request-ID"  # echoed in every response, and sent onward with requests
MAX_LENGTH = 200
# C0 controls, DEL and C1 controls: anything that could split or forge a log line.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENVIRON_KEYS = "c2cwsgiutils.request_id_environ_keys"
TWEEN = "c2cwsgiutils.request_tracking.tween_factory"
"""The tween's name, for an app tween that needs the ID: ``config.add_tween(..., under=TWEEN)``."""

current_request_id: ContextVar[str | None] = ContextVar("c2cwsgiutils_request_id", default=None)
"""The ID of the request this thread is serving, or None outside of a request."""


def environ_key(header: str) -> str:
    """Return the WSGI environ key of a request header."""
    return "HTTP_" + header.upper().replace("-", "_")


def is_acceptable(value: str) -> bool:
    """Tell whether an incoming request ID is short and free of control characters."""
    return 0 < len(value) <= MAX_LENGTH and _UNSAFE.search(value) is None


def new_request_id() -> str:
    """Return a random (version 4) UUID as text.

    Formatted by hand: ``str(uuid.uuid4())`` costs about 3 µs, a third of the toolkit's budget
    per request.
    """
    digits = os.urandom(16).hex()
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def request_id_from_environ(environ: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """Return the first acceptable ID among the given environ keys, or a new UUID."""
    for key in keys:
        value = environ.get(key)
        if value is not None:
            value = value.strip()
            if is_acceptable(value):
                return str(value)
    return new_request_id()


def _environ_keys(settings: Mapping[str, Any] | None) -> tuple[str, ...]:
    extra = c2c_config.get_str(settings, "C2C_REQUEST_ID_HEADER", "c2c.request_id_header", None)
    headers = ((extra,) if extra else ()) + DEFAULT_HEADERS
    return tuple(dict.fromkeys(environ_key(header) for header in headers))


def tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Set ``request.c2c_request_id``, publish it while the request runs and echo it in the response."""
    keys = registry[_ENVIRON_KEYS]

    def request_tracking_tween(request: Request) -> Response:
        # A plain attribute: a reified request method would cost ~18 µs per request, as
        # Pyramid builds a new class for every request that has one.
        request_id = request.c2c_request_id = request_id_from_environ(request.environ, keys)
        token = current_request_id.set(request_id)
        try:
            response = handler(request)
        finally:
            current_request_id.reset(token)
        # Appended to the raw header list: going through response.headers costs ten times more.
        response.headerlist.append((HEADER, request_id))
        return response

    return request_tracking_tween


_ORIGINAL = "_c2cwsgiutils_original"


def propagate_to_requests() -> None:
    """Make every ``requests`` call made while serving a request carry its ID in ``X-Request-ID``.

    This wraps ``requests.Session.send`` once per process; a header the caller set wins.
    """
    original = requests.Session.send
    if hasattr(original, _ORIGINAL):
        return

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request_id = current_request_id.get()
        if request_id is not None and HEADER not in request.headers:
            request.headers[HEADER] = request_id
        return original(self, request, **kwargs)

    setattr(send, _ORIGINAL, original)
    requests.Session.send = send  # type: ignore[method-assign]


def stop_propagating_to_requests() -> None:
    """Undo :func:`propagate_to_requests` (for tests)."""
    original = getattr(requests.Session.send, _ORIGINAL, None)
    if original is not None:
        requests.Session.send = original  # type: ignore[method-assign]


def includeme(config: Configurator) -> None:
    """Switch request tracking on: ``request.c2c_request_id``, the response header, onward calls."""
    if not first_time(config, "request_tracking"):
        return
    settings = config.get_settings()
    config.registry[_ENVIRON_KEYS] = _environ_keys(settings)
    # At the top, so that the toolkit's other tweens see the ID and error responses carry it too.
    config.add_tween(TWEEN, under=INGRESS)
    if c2c_config.get_bool(settings, "C2C_REQUESTS_REQUEST_ID", "c2c.requests_request_id", True):
        propagate_to_requests()
