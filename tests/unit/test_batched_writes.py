"""pyramid_logging.batched_writes: the JSON handlers' lines of a thread, one write per handler."""

import io
import logging
import threading
from collections.abc import Iterator

import pytest

from c2cwsgiutils.pyramid_logging import JsonLogHandler, batched_writes


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class Collector(logging.Handler):
    """Keep the messages, one handle call each."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def only_odd(record: logging.LogRecord) -> bool:
    assert isinstance(record.args, tuple)
    number = record.args[0]
    assert isinstance(number, int)
    return bool(number % 2)


Loggers = tuple[logging.Logger, CountingStream, CountingStream, Collector]


@pytest.fixture
def loggers() -> Iterator[Loggers]:
    """A child logger with a JSON handler (filtered) and a parent with a text handler and a collector."""
    parent = logging.getLogger("test_batched_writes")
    child = logging.getLogger("test_batched_writes.access")
    json_stream, text_stream = CountingStream(), CountingStream()
    json_handler = JsonLogHandler(json_stream)
    json_handler.addFilter(only_odd)
    text_handler = logging.StreamHandler(text_stream)
    text_handler.setLevel(logging.WARNING)
    collector = Collector()
    child.handlers, parent.handlers = [json_handler], [text_handler, collector]
    parent.propagate = False
    child.setLevel(logging.DEBUG)
    yield child, json_stream, text_stream, collector
    child.handlers, parent.handlers = [], []
    child.propagate = parent.propagate = True
    child.setLevel(logging.NOTSET)


def log_six(logger: logging.Logger) -> None:
    for number in range(6):
        logger.log((logging.INFO, logging.WARNING)[number % 2], "record %d", number)


def test_the_json_lines_are_written_once_at_the_end(loggers: Loggers) -> None:
    logger, json_stream, text_stream, collector = loggers
    with batched_writes():
        log_six(logger)
        assert json_stream.writes == 0  # held back
    assert json_stream.writes == 1
    assert [line.count('"record 1"') + line.count('"record 3"') + line.count('"record 5"') for line in
            json_stream.getvalue().splitlines()] == [1, 1, 1]  # fmt: skip
    # The others are logging's as usual: a write per record, every record handled.
    assert text_stream.writes == 3
    assert collector.messages == [f"record {number}" for number in range(6)]


def test_the_same_lines_as_without_the_block(loggers: Loggers) -> None:
    logger, json_stream, _, _ = loggers
    log_six(logger)
    one_by_one = json_stream.getvalue().splitlines()
    json_stream.seek(0)
    json_stream.truncate()
    with batched_writes():
        log_six(logger)
    batched = json_stream.getvalue().splitlines()
    # Each line names the same record (their timestamps differ).
    assert [line.split('"short_message":')[1][:12] for line in batched] == [
        line.split('"short_message":')[1][:12] for line in one_by_one
    ]


def test_other_threads_write_at_once(loggers: Loggers) -> None:
    logger, json_stream, _, _ = loggers
    with batched_writes():
        thread = threading.Thread(target=logger.warning, args=("record %d", 7))
        thread.start()
        thread.join()
        assert json_stream.writes == 1


def test_a_record_that_cannot_be_formatted_is_reported_and_the_rest_written(
    loggers: Loggers, capsys: pytest.CaptureFixture[str]
) -> None:
    logger, json_stream, _, _ = loggers
    logger.propagate = False
    with batched_writes():
        logger.warning("record %d of %d", 1)  # noqa: PLE1206 (one argument short, on purpose)
        logger.warning("record %d", 3)
    assert json_stream.getvalue().count('"record 3"') == 1
    assert "cannot write a log record" in capsys.readouterr().err


def test_a_stream_that_fails_costs_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    stream.close()
    logger = logging.getLogger("test_batched_writes.closed")
    logger.handlers, logger.propagate = [JsonLogHandler(stream)], False
    try:
        with batched_writes():
            logger.warning("lost")
    finally:
        logger.handlers, logger.propagate = [], True
    assert "cannot write 1 log records" in capsys.readouterr().err
