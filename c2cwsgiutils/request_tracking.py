"""Give every request an ID that follows it through logs and onward calls.

The ID comes from the first request header that holds a usable value, in this order:
``C2C_REQUEST_ID_HEADER`` (if set), ``X-Request-ID``, ``X-Correlation-ID``, ``Request-ID``,
``X-Varnish``; otherwise it is a new UUID. A header value longer than 200 characters or holding
anything but printable ASCII is not trusted (it could forge log lines) and is passed over.

The ID is ``request.c2c_request_id``, it is echoed in the response's ``X-Request-ID`` header, and
while the request is served it is in :data:`current_request_id`, from which log records and
outgoing ``requests`` calls pick it up. A subrequest keeps the ID of the request that made it.
"""

import dataclasses
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any

import requests
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.threadlocal import get_current_request, manager
from pyramid.tweens import INGRESS

from c2cwsgiutils.config_utils import SettingsGroup, parse_bool, setting
from c2cwsgiutils.include import first_time

DEFAULT_HEADERS = ("X-Request-ID", "X-Correlation-ID", "Request-ID", "X-Varnish")
HEADER = "X-Request-ID"  # echoed in every response, and sent onward with requests
_HEADER_LOWER = HEADER.lower()
_HEADER_LENGTH = len(HEADER)
MAX_LENGTH = 200
# Printable ASCII only: anything else could split or forge a log line, or turn into mojibake.
_ACCEPTABLE = re.compile(rf"[\x20-\x7e]{{1,{MAX_LENGTH}}}")
_ENVIRON_KEYS = "c2cwsgiutils.request_id_environ_keys"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
TWEEN = "c2cwsgiutils.request_tracking.tween_factory"
"""The tween's name, for an app tween that needs the ID: ``config.add_tween(..., under=TWEEN)``."""

current_request_id: ContextVar[str | None] = ContextVar("c2cwsgiutils_request_id", default=None)
"""The ID of the request this thread is serving, or None outside of a request.

It is set from the moment the toolkit's tween sees the request until the server has sent the
whole response: response callbacks, finished callbacks and a streamed body see it too.
"""


@dataclasses.dataclass(frozen=True)
class RequestTrackingSettings(SettingsGroup):
    """Where request IDs come from and where they go."""

    TITLE = "Request tracking"

    request_id_header: str | None = setting(
        "C2C_REQUEST_ID_HEADER",
        "c2c.request_id_header",
        None,
        "An extra request header to take the request ID from, tried first.",
    )
    requests_request_id: bool = setting(
        "C2C_REQUESTS_REQUEST_ID",
        "c2c.requests_request_id",
        True,
        "Add `X-Request-ID` to the `requests` calls made while serving a request.",
        parse=parse_bool,
    )


def request_id(request: Request | None) -> str | None:
    """Return the ID the tween gave ``request``; None for no request or one the tween did not see."""
    return getattr(request, "c2c_request_id", None)


def trace_id(traceparent: str | None) -> str | None:
    """Return the trace id of a W3C ``traceparent`` header, or None if it is not a valid one."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    return match.group(1) if match is not None and match.group(1) != "0" * 32 else None


def environ_key(header: str) -> str:
    """Return the WSGI environ key of a request header."""
    return "HTTP_" + header.upper().replace("-", "_")


def is_acceptable(value: str) -> bool:
    """Tell whether an incoming request ID is 1 to 200 characters of printable ASCII."""
    return _ACCEPTABLE.fullmatch(value) is not None


class _RandomBits:
    """128 random bits at a time from a generator of this module's own, reseeded in forked children.

    Not ``os.urandom``: its system call releases the GIL, and in a gunicorn worker whose threads
    are busy, winning it back costs a thread switch per request (on the benchmark machine that,
    more than any Python code, made the toolkit's requests dearer: bench/run.py section 1). A
    request ID needs to be unique, not unguessable (clients may send their own). The generator is
    not ``random``'s shared one, which an app may seed (``random.seed(42)``), and is reseeded from
    the system's entropy after a fork, so that no two workers draw the same IDs.
    """

    def __init__(self) -> None:
        self._generator: random.Random | None = None
        self._lock = threading.Lock()

    def __call__(self) -> int:
        generator = self._generator
        if generator is None:
            generator = self._start()
        return generator.getrandbits(128)

    def _start(self) -> random.Random:
        with self._lock:
            if self._generator is None:
                self._generator = random.Random()  # noqa: S311 (unique, not secret: see above)
                os.register_at_fork(after_in_child=self._generator.seed)
            return self._generator


_random_bits = _RandomBits()
# The version (4) and variant (RFC 4122) bits of a UUID, over 128 random bits.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """Return a random (version 4) UUID as text.

    Formatted by hand: ``str(uuid.uuid4())`` costs several times more, on every request
    (bench/results.md, "Design figures").
    """
    digits = f"{(_random_bits() & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def request_id_from_environ(environ: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """Return the first acceptable ID among the given environ keys, or a new UUID."""
    for key in keys:
        value = environ.get(key)
        if value is not None:
            value = value.strip()
            if is_acceptable(value):
                return str(value)
    return new_request_id()


def _environ_keys(settings: RequestTrackingSettings) -> tuple[str, ...]:
    extra = settings.request_id_header
    headers = ((extra,) if extra else ()) + DEFAULT_HEADERS
    return tuple(dict.fromkeys(environ_key(header) for header in headers))


def _parent_request_id() -> str | None:
    """Return the ID of the request that started this one as a subrequest, if it is one."""
    stack = manager.stack  # Pyramid pushes each request it serves, subrequests on top
    if len(stack) < 2:
        return None
    parent_id: str | None = getattr(stack[-2].get("request"), "c2c_request_id", None)
    return parent_id


def _forget(token: Token[str | None]) -> None:
    try:
        current_request_id.reset(token)
    except ValueError:  # closed from another context than the one that set it
        current_request_id.set(None)


class _ListBodyThenForget(list):  # type: ignore[type-arg]
    """The usual body, a list of chunks, that un-publishes the request ID when the server closes it.

    A list subclass, so that the server iterates it at C speed.
    """

    __slots__ = ("_token",)
    _token: Token[str | None]

    def close(self) -> None:
        _forget(self._token)


class _BodyThenForget:
    """Any other body, wrapped to un-publish the request ID when the server closes it."""

    __slots__ = ("_body", "_token")

    def __init__(self, body: Iterable[bytes], token: Token[str | None]) -> None:
        self._body = body
        self._token = token

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            _forget(self._token)


def _forget_when_sent(response: Response, token: Token[str | None], environ: Mapping[str, Any]) -> None:
    # The body is read and set past the app_iter property, whose setter would drop Content-Length.
    body = response._app_iter
    if type(body) is list:
        wrapped = _ListBodyThenForget(body)
        wrapped._token = token
        response._app_iter = wrapped
        return
    file_wrapper = environ.get("wsgi.file_wrapper")
    if file_wrapper is not None and isinstance(body, file_wrapper):
        # Keep the server's sendfile path: chain onto the wrapper's own close instead.
        original_close = getattr(body, "close", None)

        def close() -> None:
            try:
                if original_close is not None:
                    original_close()
            finally:
                _forget(token)

        body.close = close
        return
    response._app_iter = _BodyThenForget(body, token)


def tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Set ``request.c2c_request_id``, publish it while the request runs and echo it in the response."""
    keys = registry[_ENVIRON_KEYS]

    def request_tracking_tween(request: Request) -> Response:
        # A plain attribute: for a request that has a reified request method, Pyramid builds a
        # new class (bench/results.md, "Design figures").
        # Set at this point only inside a subrequest (the outer request forgets it when sent).
        parent_id = current_request_id.get() and _parent_request_id()
        request_id = request.c2c_request_id = parent_id or request_id_from_environ(request.environ, keys)
        token = current_request_id.set(request_id)
        try:
            response = handler(request)
        except BaseException:
            current_request_id.reset(token)
            raise
        headerlist = response.headerlist
        # An app that set the header itself keeps its own, alone. (A plain loop: a generator
        # in any() costs more than the few headers it scans.)
        for name, _ in headerlist:
            if len(name) == _HEADER_LENGTH and name.lower() == _HEADER_LOWER:
                break
        else:
            headerlist.append((HEADER, request_id))
        if parent_id is None:
            _forget_when_sent(response, token, request.environ)
        else:
            current_request_id.reset(token)
        return response

    return request_tracking_tween


_ORIGINAL = "_c2cwsgiutils_original"


@dataclasses.dataclass
class RequestsHooks:
    """What the toolkit's one wrapper of ``requests.Session.send`` does (process-wide, as the wrapper is).

    Each feature's include sets its part: request tracking ``propagate_id``,
    :mod:`c2cwsgiutils.metrics.outgoing` ``default_timeout``, the metrics ``measure``.
    """

    propagate_id: bool = False
    """Send the request ID (and the W3C ``traceparent``) along with calls made while serving a request."""
    default_timeout: float | None = None
    """The timeout of calls made while serving a request that set none (``timeout=None`` counts as none)."""
    measure: Callable[[requests.PreparedRequest, int | str, float], None] | None = None
    """Called after each call with the request, the status (or ``timeout``/``error``) and the seconds."""

    def reset(self) -> None:
        """Switch every hook off."""
        self.propagate_id, self.default_timeout, self.measure = False, None, None


REQUESTS_HOOKS = RequestsHooks()
"""The hooks of :func:`wrap_requests`."""
# A redirect or a retry is sent by ``send`` itself, through the wrapper: measured once, outside.
_measuring: ContextVar[bool] = ContextVar("c2cwsgiutils_requests_measuring", default=False)


def wrap_requests() -> None:
    """Wrap ``requests.Session.send`` once per process with :data:`REQUESTS_HOOKS`."""
    original = requests.Session.send
    if hasattr(original, _ORIGINAL):
        return
    hooks = REQUESTS_HOOKS

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request_id = current_request_id.get()
        if request_id is not None or (
            hooks.default_timeout is not None and get_current_request() is not None
        ):
            if hooks.propagate_id and request_id is not None and HEADER not in request.headers:
                request.headers[HEADER] = request_id
                serving = get_current_request()
                traceparent = serving.environ.get("HTTP_TRACEPARENT") if serving is not None else None
                if trace_id(traceparent) is not None and "traceparent" not in request.headers:
                    request.headers["traceparent"] = traceparent.strip()  # type: ignore[union-attr]
            if hooks.default_timeout is not None and kwargs.get("timeout") is None:
                kwargs["timeout"] = hooks.default_timeout
        measure = hooks.measure
        if measure is None or _measuring.get():
            return original(self, request, **kwargs)
        token = _measuring.set(True)
        start = time.perf_counter()
        try:
            response = original(self, request, **kwargs)
        except requests.Timeout:
            measure(request, "timeout", time.perf_counter() - start)
            raise
        except Exception:
            measure(request, "error", time.perf_counter() - start)
            raise
        finally:
            _measuring.reset(token)
        measure(request, response.status_code, time.perf_counter() - start)
        return response

    setattr(send, _ORIGINAL, original)
    requests.Session.send = send  # type: ignore[method-assign]


def stop_propagating_to_requests() -> None:
    """Undo :func:`wrap_requests` and forget the hooks (for tests)."""
    REQUESTS_HOOKS.reset()
    original = getattr(requests.Session.send, _ORIGINAL, None)
    if original is not None:
        requests.Session.send = original  # type: ignore[method-assign]


def includeme(config: Configurator) -> None:
    """Switch request tracking on: ``request.c2c_request_id``, the response header, onward calls."""
    if not first_time(config, "request_tracking"):
        return
    settings = RequestTrackingSettings.of(config)
    config.registry[_ENVIRON_KEYS] = _environ_keys(settings)
    # At the top, so that the toolkit's other tweens see the ID and error responses carry it too.
    config.add_tween(TWEEN, under=INGRESS)
    REQUESTS_HOOKS.propagate_id = settings.requests_request_id
    if settings.requests_request_id:
        wrap_requests()


def init(config: Configurator | None = None) -> None:
    """Switch request tracking on (upstream's older name; prefer ``config.include(...)`` of this module).

    Without ``config`` (upstream's form for a process without Pyramid), only the ``requests`` calls
    are wrapped, as ``C2C_REQUESTS_REQUEST_ID`` says: an ID set in :data:`current_request_id` goes along.
    """
    if config is not None:
        config.include(includeme)
        return
    REQUESTS_HOOKS.propagate_id = RequestTrackingSettings.resolve(None).requests_request_id
    if REQUESTS_HOOKS.propagate_id:
        wrap_requests()
