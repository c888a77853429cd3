"""The JSON and CEE syslog handlers, on real streams and real UDP sockets."""

import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyramid.request import Request

from c2cwsgiutils import pyramid_logging, request_tracking
from c2cwsgiutils.acceptance.udp import UdpReceiver
from tests.apps import make_app


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("c2cwsgiutils_test_json")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def json_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def stream(logger: logging.Logger) -> io.StringIO:
    output = io.StringIO()
    logger.addHandler(pyramid_logging.JsonLogHandler(output))
    return output


def test_json_record_has_the_gelf_fields(logger: logging.Logger, stream: io.StringIO) -> None:
    logger.info("hello %s", "world")
    (record,) = json_records(stream)
    assert record["short_message"] == "hello world"
    assert (record["level"], record["level_name"], record["facility"]) == (
        6,
        "INFO",
        "c2cwsgiutils_test_json",
    )
    assert {"host", "timestamp", "pid", "thread_name", "process_name", "file", "line", "function"} <= set(
        record
    )
    assert record["function"] == "test_json_record_has_the_gelf_fields"
    assert "full_message" not in record
    assert not [key for key in record if key.startswith("_")]


@pytest.mark.parametrize(
    ("level", "severity"),
    [(logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3), (logging.CRITICAL, 2)],
)
def test_level_is_the_syslog_severity(
    logger: logging.Logger, stream: io.StringIO, level: int, severity: int
) -> None:
    logger.log(level, "x")
    assert json_records(stream)[0]["level"] == severity


def test_exception_goes_to_full_message(logger: logging.Logger, stream: io.StringIO) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("it failed")
    (record,) = json_records(stream)
    assert record["short_message"] == "it failed"
    assert record["full_message"].startswith("it failed\nTraceback")
    assert "ValueError: bad value" in record["full_message"]


def test_extra_fields_are_included(logger: logging.Logger, stream: io.StringIO) -> None:
    logger.info("x", extra={"order_id": 42, "_private": "y"})
    record = json_records(stream)[0]
    assert (record["order_id"], record["private"]) == (42, "y")


def test_record_formatted_as_text_first_gains_no_field(logger: logging.Logger, stream: io.StringIO) -> None:
    """A text formatter before it sets ``message`` and ``asctime`` on the record: not extras."""
    text_handler = logging.StreamHandler(io.StringIO())
    text_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.handlers.insert(0, text_handler)
    logger.info("x", extra={"order_id": 42})
    record = json_records(stream)[0]
    assert record["order_id"] == 42
    assert not {"message", "asctime"} & set(record)


class Unserialisable:
    def __str__(self) -> str:
        return "as text"


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_extra_that_is_not_a_string_or_number_becomes_its_str(
    logger: logging.Logger, stream: io.StringIO
) -> None:
    """As the original's: a dict or list is its str(), so an index that mapped it as text takes it."""
    logger.info("x", extra={"thing": Unserialisable(), "huge": 2**70, "keys": {1: "a"}, "flag": True})
    record = json_records(stream)[0]
    assert (record["thing"], record["huge"], record["keys"], record["flag"]) == (
        "as text",
        2**70,
        "{1: 'a'}",
        True,
    )


def test_broken_str_loses_no_record(logger: logging.Logger, stream: io.StringIO) -> None:
    logger.info("x", extra={"thing": Broken(), "huge": 2**70})
    assert json_records(stream)[0]["thing"] == "<unprintable Broken>"


def test_records_outside_requests_have_no_request_fields(logger: logging.Logger, stream: io.StringIO) -> None:
    logger.info("x")
    assert not {"request_id", "client_addr", "method", "path", "matched_route"} & set(json_records(stream)[0])


def test_records_inside_a_request_carry_its_fields(logger: logging.Logger, stream: io.StringIO) -> None:
    def view(request: Request) -> dict[str, bool]:
        logger.info("inside")
        return {"ok": True}

    make_app({"probe": view}).get(
        "/probe?name=x&secret=hunter2",
        headers={
            "X-Request-ID": "rid-1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
        extra_environ={"REMOTE_ADDR": "192.0.2.7"},
    )
    record = json_records(stream)[0]
    assert record["request_id"] == "rid-1"
    assert record["client_addr"] == "192.0.2.7"
    assert record["method"] == "GET"
    assert record["path"] == "/probe"
    assert record["query_string"] == "name=x&secret=***"
    assert record["matched_route"] == "probe"
    assert record["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    "value", ["", "junk", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-xyz"]
)
def test_invalid_traceparent_gives_no_trace_id(value: str) -> None:
    assert request_tracking.trace_id(value) is None


def test_json_handler_on_a_closed_stream_warns_once(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = io.StringIO()
    closed.close()
    logger.addHandler(pyramid_logging.JsonLogHandler(closed))
    for _ in range(5):
        logger.info("lost")
    assert capsys.readouterr().err.count("c2cwsgiutils logging: cannot write a log record") == 1


SYSLOG_FRAME = re.compile(
    rb"^<(?P<pri>\d+)>1 (?P<stamp>\S+) (?P<host>\S+) (?P<tag>\S+) (?P<pid>\d+) - - @cee: (?P<json>\{.*\})$",
    re.DOTALL,
)


def syslog_handler(receiver: UdpReceiver, **kwargs: Any) -> pyramid_logging.PyramidCeeSysLogHandler:
    return pyramid_logging.PyramidCeeSysLogHandler((receiver.host, receiver.port), **kwargs)


def test_cee_record_is_an_rfc5424_frame(logger: logging.Logger, udp_receiver: UdpReceiver) -> None:
    logger.addHandler(syslog_handler(udp_receiver, facility="local3", ident="myapp"))
    logger.warning("over syslog")
    match = SYSLOG_FRAME.match(udp_receiver.wait_for(lambda data: b"over syslog" in data))
    assert match is not None
    assert int(match["pri"]) == 19 * 8 + 4  # local3, warning
    assert match["tag"] == b"myapp"
    assert match["stamp"].endswith(b"Z")
    assert json.loads(match["json"])["short_message"] == "over syslog"


def test_cee_marker_is_followed_by_a_space(logger: logging.Logger, udp_receiver: UdpReceiver) -> None:
    """The original's framing: consumers that look for the exact ``@cee: `` marker find it."""
    logger.addHandler(syslog_handler(udp_receiver))
    logger.info("marked")
    datagram = udp_receiver.wait_for(lambda data: b"marked" in data)
    assert b" @cee: {" in datagram


def test_ini_form_with_a_list_of_one_tuple(logger: logging.Logger, udp_receiver: UdpReceiver) -> None:
    args: list[Any] = [(udp_receiver.host, udp_receiver.port)]  # what fileConfig evaluates `args =` to
    handler = pyramid_logging.PyramidCeeSysLogHandler(*args)
    logger.addHandler(handler)
    logger.info("ini form")
    udp_receiver.wait_for(lambda data: b"ini form" in data)


def test_big_record_is_truncated_into_valid_json(logger: logging.Logger, udp_receiver: UdpReceiver) -> None:
    logger.addHandler(syslog_handler(udp_receiver, max_size=2000))
    logger.error("big " + "\u00e9\n" * 5000, extra={"other": "y" * 3000})
    datagram = udp_receiver.wait_for(lambda data: b"big" in data)
    assert len(datagram) <= 2000
    match = SYSLOG_FRAME.match(datagram)
    assert match is not None
    record = json.loads(match["json"])
    assert record["truncated"] > 2000
    assert record["short_message"].startswith("big ")
    assert record["short_message"].endswith(pyramid_logging.TRUNCATED)


def test_unresolvable_host_never_raises_and_warns_once(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = pyramid_logging.PyramidCeeSysLogHandler(("no-such-host.invalid", 514))
    logger.addHandler(handler)
    started = time.monotonic()
    for _ in range(20):
        logger.info("nowhere")
    assert time.monotonic() - started < 0.5  # queued, not resolved in the caller's thread
    handler.flush()
    assert capsys.readouterr().err.count("cannot send to syslog at no-such-host.invalid:514") == 1


def test_dead_syslog_port_never_raises(logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    receiver = UdpReceiver()
    port = receiver.port
    receiver.close()  # nothing listens there any more: sends may be refused
    handler = pyramid_logging.PyramidCeeSysLogHandler(("127.0.0.1", port))
    logger.addHandler(handler)
    for _ in range(20):
        logger.info("refused")
    handler.flush()
    assert capsys.readouterr().err.count("c2cwsgiutils logging:") <= 1


def test_parse_log_types() -> None:
    assert pyramid_logging.parse_log_types("json, syslog") == ("json", "syslog")
    with pytest.raises(ValueError, match="expected one or more of console, json, syslog, logstash"):
        pyramid_logging.parse_log_types("xml")


def test_default_config_routes_gunicorn_through_the_same_handlers() -> None:
    settings = pyramid_logging.LoggingSettings.resolve(None, {"LOG_TYPE": "json,logstash"})
    config = pyramid_logging.default_config(settings, "myapp")
    assert config["root"]["handlers"] == ["json", "syslog"]
    assert config["loggers"]["gunicorn.access"] == {"level": "INFO", "handlers": [], "propagate": True}
    assert config["loggers"]["myapp"] == {"level": "INFO"}


def raise_chained() -> None:
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError as error:
        raise ValueError("while handling it") from error


def test_exception_text_is_the_standard_one_without_position_markers() -> None:
    try:
        raise_chained()
    except ValueError:
        exc_info = sys.exc_info()
    standard = logging.Formatter().formatException(exc_info)
    markers = [line for line in standard.splitlines() if line.strip() and not set(line.strip()) - set("^~")]
    without_markers = "\n".join(line for line in standard.splitlines() if line not in markers)
    assert pyramid_logging.JsonFormatter(host="h").formatException(exc_info) == without_markers
    assert "The above exception was the direct cause" in without_markers
