"""The access log: written off the request's thread, with the same text and fields as gunicorn's."""

import datetime
import io
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import SafeAtoms

from c2cwsgiutils.pyramid_logging import JsonLogHandler
from c2cwsgiutils.server import gunicorn_logging
from c2cwsgiutils.server.gunicorn_logging import DEFAULT_FORMAT, AccessWriter, LazyAtoms, ScrubbingLogger
from testing.fixtures import StartServer


class Collector(logging.Handler):
    """Keep the records, with the thread that handled each one."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[logging.LogRecord, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, record.getMessage(), threading.current_thread().name))


class Request:
    """What gunicorn's access log reads of its request object."""

    headers = (("HOST", "example.com"), ("X-FORWARDED-FOR", "192.0.2.9"), ("REFERER", "http://r/?token=t0k"))


class Response:
    """What gunicorn's access log reads of its response object."""

    status = "201 Created"
    status_code = 201
    sent = 17
    headers = (("Content-Type", "text/plain"), ("X-Request-ID", "from-the-response"))


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "RAW_URI": '/path?secret=hunter2&q="quoted"',
    "PATH_INFO": "/path",
    "QUERY_STRING": 'secret=hunter2&q="quoted"',
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.5",
    "HTTP_USER_AGENT": "agent/1",
    "HTTP_REFERER": "http://r/?token=t0k",
    "HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz",
}
DURATION = datetime.timedelta(seconds=1, microseconds=2345)


@pytest.fixture
def access_logger() -> Iterator[tuple[ScrubbingLogger, Collector]]:
    config = Config()
    config.set("accesslog", "-")
    logger = ScrubbingLogger(config)
    collector = Collector()
    logger.access_log.handlers = [collector]
    yield logger, collector
    if logger._access_writer is not None:
        logger._access_writer.close()


def entry(environ: dict[str, str] | None = None) -> Any:
    return gunicorn_logging._AccessEntry(
        Response(), Request(), environ or ENVIRON, DURATION, None, time.time(), 1, "request-thread"
    )


ATOMS = (
    *("h", "l", "u", "t", "r", "s", "m", "U", "q", "H", "b", "B", "f", "a", "T", "D", "M", "L", "p"),
    *("{host}i", "{Referer}i", "{x-request-id}o", "{content-type}O", "{raw_uri}e", "{request_method}E"),
    *("{missing}i", "{missing}o", "unknown"),
)


def test_lazy_atoms_are_gunicorn_atoms_scrubbed(access_logger: tuple[ScrubbingLogger, Collector]) -> None:
    logger, _ = access_logger
    an_entry = entry()
    lazy = LazyAtoms(logger, an_entry)
    reference = SafeAtoms(logger.atoms(Response(), Request(), ENVIRON, DURATION))
    reference["t"] = lazy["t"]  # gunicorn's is the time now, ours the request's
    assert {key: lazy[key] for key in ATOMS} == {key: reference[key] for key in ATOMS}
    assert "hunter2" not in DEFAULT_FORMAT % lazy
    assert lazy.default_line() == DEFAULT_FORMAT % reference


def test_access_record_is_written_by_the_writer_thread_with_the_request_thread_name(
    access_logger: tuple[ScrubbingLogger, Collector],
) -> None:
    logger, collector = access_logger
    before = time.time()
    logger.access(Response(), Request(), dict(ENVIRON), DURATION)
    assert logger._access_writer is not None
    logger._access_writer.flush()
    ((record, message, handled_by),) = collector.records
    assert handled_by == "c2cwsgiutils-access-log"
    assert record.threadName == threading.current_thread().name
    assert before <= record.created <= time.time()
    assert message.startswith("127.0.0.5 - user [")
    assert message.endswith(
        '"GET /path?secret=***&q=\\"quoted\\" HTTP/1.1" 201 17 "http://r/?token=***" "agent/1"'
    )
    fields = {key: getattr(record, key) for key in ("method", "path", "status", "bytes", "duration")}
    assert fields == {
        "method": "GET",
        "path": '/path?secret=***&q="quoted"',
        "status": 201,
        "bytes": 17,
        "duration": 1.002345,
    }
    assert tuple(getattr(record, key) for key in ("request_id", "client_addr", "user_agent")) == (
        "from-the-response",
        "127.0.0.5",
        "agent/1",
    )


def test_custom_access_format_gets_its_atoms(access_logger: tuple[ScrubbingLogger, Collector]) -> None:
    logger, collector = access_logger
    logger.cfg.set("access_log_format", "%(m)s %({x-request-id}o)s %(D)s %(q)s %(nothing)s")
    logger.write_accesses([entry()])
    assert collector.records[0][1] == 'GET from-the-response 1002345 secret=***&q=\\"quoted\\" -'


def test_logging_disable_silences_the_access_log(access_logger: tuple[ScrubbingLogger, Collector]) -> None:
    """The writer logs through logging's public API: ``logging.disable`` applies, as to any record."""
    logger, collector = access_logger
    logging.disable(logging.INFO)
    try:
        logger.write_accesses([entry()])
    finally:
        logging.disable(logging.NOTSET)
    assert collector.records == []
    logger.write_accesses([entry()])
    assert len(collector.records) == 1


def test_a_batch_is_one_write_of_the_json_handler(access_logger: tuple[ScrubbingLogger, Collector]) -> None:
    logger, _ = access_logger
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    logger.access_log.handlers = [JsonLogHandler(Stream())]
    logger.write_accesses([entry(), entry(), entry()])
    assert len(writes) == 1
    assert writes[0].count('"status":201') == 3


def test_full_queue_writes_in_the_callers_thread() -> None:
    written: list[tuple[list[int], str]] = []

    def write(numbers: list[int]) -> None:
        written.append((numbers, threading.current_thread().name))

    writer = AccessWriter(write, size=2, interval=60)  # the thread waits: the queue stays full
    try:
        writer.put(0)  # queued
        writer.put(1)  # queued
        writer.put(2)  # the queue is full: written here
        assert written == [([2], threading.current_thread().name)]
    finally:
        writer.close()  # the thread writes what is queued, in one batch
    assert written == [([2], threading.current_thread().name), ([0, 1], "c2cwsgiutils-access-log")]


def test_writer_thread_survives_a_failing_batch() -> None:
    written: list[list[int]] = []

    def write(numbers: list[int]) -> None:
        if numbers == [0]:
            raise RuntimeError("the handler broke")
        written.append(numbers)

    writer = AccessWriter(write, interval=0.01)
    try:
        writer.put(0)
        writer.flush()
        writer.put(1)
        writer.flush()
        assert written == [[1]]
    finally:
        writer.close()


def test_access_records_queued_at_shutdown_are_written(start_server: StartServer) -> None:
    server = start_server(workers=1)
    with requests.Session() as session:
        for number in range(50):
            assert session.get(server.url(f"/api/ping?n={number}"), timeout=5).status_code == 200
    assert server.stop() == 0
    logged = re.findall(
        r'"GET /api/ping\?n=(\d+) HTTP/1.1"', Path(server.log_file).read_text(encoding="utf-8")
    )
    assert sorted(map(int, logged)) == list(range(50))
