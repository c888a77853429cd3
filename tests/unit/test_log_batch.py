"""log_batch.handle_batch: what logger.handle would log, with one write per stream handler."""

import io
import logging
from collections.abc import Iterator

import pytest

from c2cwsgiutils.pyramid_logging import JsonLogHandler
from c2cwsgiutils.server.log_batch import batchable, handle_batch


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


@pytest.fixture
def loggers() -> Iterator[tuple[logging.Logger, CountingStream, CountingStream, Collector]]:
    """A child logger with a JSON handler (filtered) and a parent with a text handler and a collector."""
    parent = logging.getLogger("test_log_batch")
    child = logging.getLogger("test_log_batch.access")
    json_stream, text_stream = CountingStream(), CountingStream()
    json_handler = JsonLogHandler(json_stream)
    json_handler.addFilter(only_odd)
    text_handler = logging.StreamHandler(text_stream)
    text_handler.setLevel(logging.WARNING)
    collector = Collector()
    child.handlers, parent.handlers = [json_handler], [text_handler, collector]
    parent.propagate = False
    yield child, json_stream, text_stream, collector
    child.handlers, parent.handlers = [], []
    child.propagate = parent.propagate = True


def records(logger: logging.Logger, count: int) -> list[logging.LogRecord]:
    levels = (logging.INFO, logging.WARNING)
    return [
        logger.makeRecord(logger.name, levels[number % 2], __file__, 1, "record %d", (number,), None)
        for number in range(count)
    ]


def test_batch_logs_what_handle_logs_with_one_write_per_stream(
    loggers: tuple[logging.Logger, CountingStream, CountingStream, Collector],
) -> None:
    logger, json_stream, text_stream, collector = loggers
    batch = records(logger, 6)
    for record in batch:
        logger.handle(record)
    one_by_one = (json_stream.getvalue(), text_stream.getvalue(), list(collector.messages))
    assert (json_stream.writes, text_stream.writes) == (3, 3)  # odd records; WARNING records

    for stream in (json_stream, text_stream):
        stream.seek(0)
        stream.truncate()
        stream.writes = 0
    collector.messages.clear()
    handle_batch(logger, batch)

    assert (json_stream.getvalue(), text_stream.getvalue(), collector.messages) == one_by_one
    assert (json_stream.writes, text_stream.writes) == (1, 1)
    assert collector.messages == [f"record {number}" for number in range(6)]  # each one handled


def test_a_record_that_cannot_be_formatted_is_reported_and_the_rest_written(
    loggers: tuple[logging.Logger, CountingStream, CountingStream, Collector],
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger, json_stream, _, _ = loggers
    logger.propagate = False  # the JSON handler alone: the others' emit would raise, as with handle
    batch = records(logger, 4)
    batch[1].msg = "record %d of %d"  # one argument short
    handle_batch(logger, batch)
    assert [line.count('"record 3"') for line in json_stream.getvalue().splitlines()] == [1]
    assert "cannot write a log record" in capsys.readouterr().err


def test_disabled_logger_and_logger_filters_apply(
    loggers: tuple[logging.Logger, CountingStream, CountingStream, Collector],
) -> None:
    logger, _, _, collector = loggers
    logger.addFilter(lambda record: record.levelno >= logging.WARNING)
    try:
        handle_batch(logger, records(logger, 4))
        assert collector.messages == ["record 1", "record 3"]
        logger.disabled = True
        handle_batch(logger, records(logger, 4))
        assert collector.messages == ["record 1", "record 3"]
    finally:
        logger.filters.clear()
        logger.disabled = False


def test_only_plain_stream_handlers_are_batched(tmp_path: object) -> None:
    assert batchable(logging.StreamHandler(io.StringIO()))
    assert batchable(JsonLogHandler(io.StringIO()))
    assert not batchable(logging.FileHandler(f"{tmp_path}/log", delay=True))  # its own emit
    assert not batchable(Collector())
