"""Log many records of one logger at once: one write per stream handler instead of one per record.

``logger.handle(record)`` makes a stream handler write and flush each record: a system call per
record, which releases the GIL. Done by a background thread (the access log's writer) while
request threads are busy, each release hands the GIL over and the thread must win it back: on
the benchmark machine that cost more CPU than formatting the record. :func:`handle_batch` routes
the records as ``logger.handle`` would (the logger's filters, the handlers of it and its parents
by level and ``propagate``, each handler's filters), formats them in the caller's thread, and
writes each stream handler's lines with one ``write`` and one ``flush``. Handlers that are not
plain streams (files, syslog, Sentry...) get each record through their own ``handle``.
"""

import logging
from collections.abc import Iterable


def _handlers(logger: logging.Logger, level: int) -> list[logging.Handler]:
    """Return the handlers ``logger.callHandlers`` would call for a record of ``level``."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(handler for handler in current.handlers if level >= handler.level)
        current = current.parent if current.propagate else None
    return found


def batchable(handler: logging.Handler) -> bool:
    """Tell whether ``handler`` writes to its stream the way ``logging.StreamHandler.emit`` does."""
    return (
        isinstance(handler, logging.StreamHandler)
        and type(handler).emit is logging.StreamHandler.emit
        and getattr(handler, "stream", None) is not None
    )


def handle_batch(logger: logging.Logger, records: Iterable[logging.LogRecord]) -> None:
    """Log ``records`` as ``logger.handle`` would each, writing every stream handler's lines at once."""
    lines: dict[logging.Handler, list[str]] = {}
    last: dict[logging.Handler, logging.LogRecord] = {}
    for record in records:
        if logger.disabled or not logger.filter(record):
            continue
        handlers = _handlers(logger, record.levelno)
        if not handlers:
            logger.handle(record)  # logging's own "no handlers" behaviour (lastResort)
            continue
        for handler in handlers:
            if not batchable(handler):
                handler.handle(record)
                continue
            if not handler.filter(record):
                continue
            try:
                text = handler.format(record) + handler.terminator  # type: ignore[attr-defined]
            except Exception:
                handler.handleError(record)
                continue
            lines.setdefault(handler, []).append(text)
            last[handler] = record
    for handler, texts in lines.items():
        handler.acquire()
        try:
            handler.stream.write("".join(texts))  # type: ignore[attr-defined]
            handler.flush()
        except Exception:
            handler.handleError(last[handler])
        finally:
            handler.release()
