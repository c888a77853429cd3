"""Our JSON and CEE records against the original's, field by field, on the same LogRecords.

The original c2cwsgiutils built its records with ``cee_syslog_handler.make_message_dict`` (the
package is in the dev extra): it then dropped the leading underscores, wrote ``full_message`` only
when it differed from the short message, and its request filter added ``level_name`` and the
request's fields. :func:`original_record` does the same with the library's own function.
"""

import copy
import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import cee_syslog_handler  # type: ignore[import-untyped]
import pytest
import webtest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.threadlocal import get_current_request, manager

import c2cwsgiutils.pyramid
from c2cwsgiutils import pyramid_logging

# Fields of ours that the original did not have (under names it never used).
OURS_ONLY = {"query_string", "trace_id"}


def original_record(record: logging.LogRecord, host: str) -> dict[str, Any]:
    """Return the record as the original c2cwsgiutils wrote it, with cee_syslog_handler."""
    record = copy.copy(record)
    request = get_current_request()
    if request is not None:  # the original's request filter
        record.client_addr = request.client_addr
        record.method = request.method
        if request.matched_route is not None:
            record.matched_route = request.matched_route.name
        record.path = request.path
        record.request_id = request.c2c_request_id
    record.level_name = record.levelname
    message: dict[str, Any] = cee_syslog_handler.make_message_dict(record, host, True, True, None, {})
    if message["message"] != message["short_message"]:
        message["full_message"] = message["message"]
    del message["message"]
    for key in [key for key in message if key.startswith("_")]:
        if key[1:] not in message:
            message[key[1:]] = message.pop(key)
    # LogRecord.taskName is Python 3.12's, which the library does not know (not in the original's).
    message.pop("taskName", None)
    return json.loads(json.dumps(message))  # type: ignore[no-any-return]


class Both(logging.Handler):
    """Format each record with one of our handlers and as the original did, in the logging thread."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.json = pyramid_logging.JsonLogHandler(io.StringIO())
        self.syslog = pyramid_logging.PyramidCeeSysLogHandler(("127.0.0.1", 9))  # never sends: frame()
        self.pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.kind == "json":
            ours = json.loads(self.json.format(record))
        else:
            marker, _, data = self.syslog.frame(record).partition(b" - - @cee: ")
            assert marker
            assert data.startswith(b"{")
            ours = json.loads(data)
        self.pairs.append((ours, original_record(record, socket.gethostname())))

    def close(self) -> None:
        self.json.close()
        self.syslog.close()
        super().close()


@pytest.fixture(params=["json", "syslog"])
def both(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, Both]]:
    logger = logging.getLogger("c2cwsgiutils_test_original")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Both(request.param)
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)
    handler.close()


def assert_same_fields(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert set(ours) - OURS_ONLY == set(theirs)
    for key, value in theirs.items():
        if key == "full_message":
            continue  # a text for people: ours is the message, then the traceback (see below)
        assert (key, ours[key]) == (key, value)


def test_plain_record_has_the_original_fields(both: tuple[logging.Logger, Both]) -> None:
    logger, handler = both
    logger.warning("hello %s", "world")
    ((ours, theirs),) = handler.pairs
    assert_same_fields(ours, theirs)
    assert {"pid", "thread_name", "process_name", "source_facility", "level_name"} <= set(ours)
    assert "full_message" not in ours


@pytest.mark.parametrize(
    "level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
)
def test_level_is_the_originals(both: tuple[logging.Logger, Both], level: int) -> None:
    logger, handler = both
    logger.log(level, "x")
    ((ours, theirs),) = handler.pairs
    assert (ours["level"], ours["level_name"]) == (theirs["level"], theirs["level_name"])


def test_extra_fields_are_the_originals(both: tuple[logging.Logger, Both]) -> None:
    logger, handler = both
    logger.info(
        "x",
        extra={
            "order_id": 42,
            "ratio": 0.5,
            "user": "alice",
            "_private": "y",
            "data": {"a": [1, 2]},
            "items": ["a", "b"],
            "host": "taken",  # a field's name: kept as _host, the field stays
            "_line": "also taken",
        },
    )
    ((ours, theirs),) = handler.pairs
    assert_same_fields(ours, theirs)
    assert (ours["_host"], ours["data"], ours["private"]) == ("taken", "{'a': [1, 2]}", "y")


def test_exception_has_a_full_message_as_the_originals(both: tuple[logging.Logger, Both]) -> None:
    logger, handler = both
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("it failed")
    ((ours, theirs),) = handler.pairs
    assert_same_fields(ours, theirs)
    # Both carry the traceback; ours starts with the message, and has no ^^^ markers.
    assert "ValueError: bad value" in theirs["full_message"]
    assert ours["full_message"].startswith("it failed\nTraceback (most recent call last):\n")
    assert ours["full_message"].endswith("ValueError: bad value")


def request_app(logger: logging.Logger) -> webtest.TestApp:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.add_route("item", "/items/{name}")

    def view(request: Request) -> dict[str, bool]:
        logger.info("inside", extra={"user": "bob"})
        return {"ok": True}

    config.add_view(view, route_name="item", renderer="json")
    return webtest.TestApp(config.make_wsgi_app())


@pytest.mark.parametrize(
    "path",
    ["/items/plain", "/items/caf%C3%A9%20au%20lait", "/items/a;b=c:d@e", "/items/%7Ehome%21%27"],
)
def test_request_fields_are_the_originals(both: tuple[logging.Logger, Both], path: str) -> None:
    logger, handler = both
    request_app(logger).get(
        f"{path}?q=1&secret=hunter2",
        headers={"X-Request-ID": "rid-orig"},
        extra_environ={"REMOTE_ADDR": "192.0.2.9"},
    )
    ((ours, theirs),) = handler.pairs
    assert_same_fields(ours, theirs)
    assert (ours["request_id"], ours["client_addr"], ours["method"], ours["matched_route"]) == (
        "rid-orig",
        "192.0.2.9",
        "GET",
        "item",
    )
    # The query string, which the original did not log, has a field of its own, scrubbed.
    assert ours["query_string"] == "q=1&secret=***"


def test_path_not_in_utf8_is_quoted_never_failing() -> None:
    """WebOb's request.path raises on such a path (the original's filter failed); ours quotes its bytes."""
    request = Request.blank("/")
    request.environ["PATH_INFO"] = "/items/\xff"  # the byte 0xFF, as a WSGI server passes it
    with pytest.raises(UnicodeDecodeError):
        _ = request.path
    stream = io.StringIO()
    handler = pyramid_logging.JsonLogHandler(stream)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "in a request", None, None)
    manager.push({"request": request, "registry": None})
    try:
        handler.handle(record)
    finally:
        manager.pop()
    assert json.loads(stream.getvalue())["path"] == "/items/%FF"
