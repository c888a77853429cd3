"""Log handlers that write JSON records with the request's context: on a stream, or to syslog as CEE.

- :class:`JsonLogHandler`: one JSON object per line on a stream (stdout by default).
- :class:`PyramidCeeSysLogHandler`: ``@cee: `` + the same JSON, over UDP, in an RFC 5424 syslog
  frame that rsyslog parses (``mmjsonparse`` reads the JSON).

Both write the fields of the original c2cwsgiutils' records (``cee_syslog_handler``'s
``make_message_dict`` without its leading underscores, plus its request filter's fields), so that
log pipelines built for it keep working: ``short_message``, ``full_message`` (only when it says
more), ``level`` (the syslog severity: 6 for INFO), ``level_name``, ``facility`` and
``source_facility`` (both the logger's name), ``host``, ``timestamp``, ``file``, ``line``,
``function``, ``pid``, ``thread_name``, ``process_name``; what the caller passed with ``extra=``
(a value that is not a string or a number as its ``str()``; a name taken by a field above gets a
leading ``_``); and, for a record logged while a request is served, ``request_id``,
``client_addr``, ``method``, ``path`` (URL-quoted, without the query string, as WebOb's
``request.path``) and ``matched_route``. Fields the original did not have: ``query_string`` (the
request's, secrets scrubbed), ``trace_id`` (when the request carries a W3C ``traceparent``) and
``truncated`` (syslog records cut down to fit a datagram).

Neither handler ever raises into the app or blocks a request: the syslog handler only queues a
datagram, which a background thread resolves and sends; a handler that cannot write warns on
stderr at most once a minute.
"""

import contextlib
import contextvars
import dataclasses
import datetime
import json
import logging
import logging.config
import logging.handlers
import os
import queue
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import orjson
from pyramid.threadlocal import get_current_request

from c2cwsgiutils import request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, int_at_least, setting
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from c2cwsgiutils.scrub import scrub_query_string

# Syslog severities (RFC 5424) of Python's levels: GELF's "level" field.
_SEVERITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
# LogRecord attributes that are not the caller's ``extra``; a record with no more has no extra.
_RECORD_SIZE = len(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)
TRUNCATED = "…[truncated]"
# Extra values kept as they are, as the original's records did; any other becomes its str().
_PLAIN_TYPES = (str, int, float)
_PLAIN_EXACT = frozenset((str, int, float, bool))  # the usual ones, found without isinstance()
# What WebOb's request.path leaves unquoted: the original's ``path`` field.
_PATH_SAFE = "/~!$&'()*+,;=:@"


def syslog_severity(levelno: int) -> int:
    """Return the syslog severity of a Python log level (DEBUG and below: 7)."""
    for threshold, severity in _SEVERITY:
        if levelno >= threshold:
            return severity
    return 7


_FIELDS_KEY = "c2cwsgiutils.log_fields"


def request_fields() -> dict[str, Any]:
    """Return the fields of the request being served by this thread (empty outside requests).

    They are computed by the first record of a request and kept on it: the records after it, and
    the requests that log nothing, pay nothing for them.
    """
    request = get_current_request()
    if request is None:
        return {}
    environ = request.environ
    fields: dict[str, Any] | None = environ.get(_FIELDS_KEY)
    if fields is None:
        fields = environ[_FIELDS_KEY] = _compute_request_fields(environ)
    route = getattr(request, "matched_route", None)  # set once routing is done
    if route is not None:
        return {**fields, "matched_route": route.name}
    return fields


def _compute_request_fields(environ: Mapping[str, Any]) -> dict[str, Any]:
    # WebOb's request.path (the original's field), from the bytes the client sent (PATH_INFO holds
    # them as latin-1): the same text for a UTF-8 path, and never failing on one that is not.
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    query = environ.get("QUERY_STRING", "")
    fields: dict[str, Any] = {
        "request_id": request_tracking.current_request_id.get(),
        "client_addr": environ.get("REMOTE_ADDR"),
        "method": environ.get("REQUEST_METHOD"),
        "path": urllib.parse.quote(path, safe=_PATH_SAFE),
        "query_string": scrub_query_string(query) if query else None,
    }
    trace = request_tracking.trace_id(environ.get("HTTP_TRACEPARENT"))
    if trace is not None:
        fields["trace_id"] = trace
    return {key: value for key, value in fields.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """Format a record as the JSON object described in the module's documentation."""

    def __init__(self, host: str | None = None) -> None:
        super().__init__()
        self.host = host or socket.gethostname()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the record's fields."""
        message = record.getMessage()
        fields: dict[str, Any] = {
            "short_message": message,
            "level": syslog_severity(record.levelno),
            "level_name": record.levelname,
            "facility": record.name,
            "source_facility": record.name,
            "host": self.host,
            "timestamp": record.created,
            "file": record.pathname,
            "line": record.lineno,
            "function": record.funcName,
            "pid": record.process,
            "thread_name": record.threadName,
            "process_name": record.processName,
        }
        full = message
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            full += "\n" + record.exc_text
        if record.stack_info:
            full += "\n" + self.formatStack(record.stack_info)
        if full != message:
            fields["full_message"] = full
        attributes = vars(record)
        if len(attributes) > _RECORD_SIZE:  # the caller's extra, or a text formatter's message
            for key, value in attributes.items():
                if key in _RECORD_ATTRIBUTES or value is None:
                    continue
                name = _extra_name(key, fields) if key in fields or key[:1] == "_" else key
                if type(value) in _PLAIN_EXACT or isinstance(value, _PLAIN_TYPES):
                    fields[name] = value
                else:
                    fields[name] = _safe_str(value)
        for key, value in request_fields().items():
            fields.setdefault(key, value)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        return dumps(self.fields(record)).decode("utf-8")

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        """Format an exception like ``logging`` does, without Python 3.11's ``^^^`` position markers.

        Finding where to put them parses each frame's source line: it doubles the time a record
        with a traceback takes, for markers a log pipeline does not need.
        """
        exception = ei[1]
        if exception is None or isinstance(exception, BaseExceptionGroup):
            return super().formatException(ei)
        return "".join(_format_exception(exception, set())).rstrip("\n")


def _extra_name(key: str, fields: Mapping[str, Any]) -> str:
    """Return the original's name of an extra field: without one leading ``_`` unless that is taken.

    Elasticsearch ignores fields whose name starts with an underscore; an extra whose bare name
    is a field already (``host``, ``line``...) keeps (or gets) one, so that it never hides it.
    """
    bare = key[1:] if key[:1] == "_" else key
    return bare if bare and bare not in fields else "_" + bare


def _format_exception(exception: BaseException, seen: set[int]) -> list[str]:
    """Return the lines of an exception and of the ones it was raised from or while handling."""
    seen.add(id(exception))
    lines: list[str] = []
    cause, context = exception.__cause__, exception.__context__
    if cause is not None and id(cause) not in seen:
        lines += _format_exception(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exception.__suppress_context__ and id(context) not in seen:
        lines += _format_exception(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exception.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        frames = traceback.walk_tb(exception.__traceback__)
        # Without positions (so: no markers) and with lines read lazily, without stat()ing files.
        lines += traceback.StackSummary.extract(frames, lookup_lines=False).format()
    lines += traceback.format_exception_only(type(exception), exception)
    return lines


def dumps(fields: Mapping[str, Any]) -> bytes:
    """Serialise with orjson; a value it cannot take becomes its ``str()``, never an error."""
    try:
        return orjson.dumps(fields, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        # Integers beyond 64 bits, recursion, a str() that fails...: the slow and tolerant way.
        return json.dumps(fields, default=_safe_str, ensure_ascii=False).encode("utf-8", "replace")


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


# The lines this thread's JsonLogHandlers hold back, inside batched_writes(): by handler.
_BATCH: contextvars.ContextVar["dict[JsonLogHandler, list[str]] | None"] = contextvars.ContextVar(
    "c2cwsgiutils_log_batch", default=None
)


@contextlib.contextmanager
def batched_writes() -> Iterator[None]:
    """Write what this thread logs to a :class:`JsonLogHandler` in the block with one ``write`` each.

    Records are routed by ``logging`` as usual (levels, filters, ``propagate``, other handlers);
    only the JSON handlers' lines of this thread wait for the end of the block. For a background
    thread that logs many records at once (the access log's writer): a ``write`` releases the GIL,
    and winning it back from busy request threads costs more than the write.
    """
    pending: dict[JsonLogHandler, list[str]] = {}
    token = _BATCH.set(pending)
    try:
        yield
    finally:
        _BATCH.reset(token)
        for handler, lines in pending.items():
            handler.write_lines(lines)


class JsonLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write one JSON object per line on a stream (``sys.stdout`` by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stdout)
        self.json_formatter = JsonFormatter()
        self._warn = RateLimitedWarning(source="c2cwsgiutils logging")

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON, whatever formatter the configuration names."""
        return self.json_formatter.format(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's line, or hold it back inside :func:`batched_writes`."""
        pending = _BATCH.get()
        if pending is None:
            super().emit(record)
            return
        try:
            pending.setdefault(self, []).append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write_lines(self, lines: list[str]) -> None:
        """Write ``lines`` with one ``write`` and one flush."""
        self.acquire()
        try:
            self.stream.write("".join(lines))
            self.flush()
        except Exception as error:
            where = getattr(self.stream, "name", self.stream)
            self._warn(f"cannot write {len(lines)} log records to {where!r}: {error!r}")
        finally:
            self.release()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        """Warn at most once a minute instead of printing a traceback per record."""
        error = sys.exc_info()[1]
        self._warn(f"cannot write a log record to {getattr(self.stream, 'name', self.stream)!r}: {error!r}")


class PyramidCeeSysLogHandler(logging.handlers.SysLogHandler):
    """Send records as ``@cee: `` JSON over UDP to syslog (rsyslog: ``mmjsonparse``).

    Takes what ``SysLogHandler`` takes, so the usual ini form works::

        class = c2cwsgiutils.pyramid_logging.PyramidCeeSysLogHandler
        args = [("%(LOG_HOST)s", %(LOG_PORT)s)]

    plus ``ident`` (the syslog tag, default ``c2cwsgiutils``) and ``max_size`` (bytes of one
    datagram; a bigger record is cut down, its longest texts first, and marked ``truncated``).
    Formatting happens in the caller's thread (it needs the request); resolving the address and
    sending happen in a background thread, so that a slow DNS or a dead syslog never stalls a
    request. When the queue is full, records are dropped with a warning.
    """

    def __init__(  # noqa: PLR0917 (SysLogHandler's positional arguments, then ours)
        self,
        address: tuple[str, int] | str = ("localhost", logging.handlers.SYSLOG_UDP_PORT),
        facility: int | str = logging.handlers.SysLogHandler.LOG_USER,
        socktype: int | None = None,
        ident: str = "c2cwsgiutils",
        max_size: int = 8192,
        queue_size: int = 10000,
    ) -> None:
        # Not SysLogHandler.__init__: it resolves and connects, which may block or fail.
        logging.Handler.__init__(self)
        if isinstance(address, str) or (socktype is not None and socktype != socket.SOCK_DGRAM):
            raise ValueError("PyramidCeeSysLogHandler sends UDP datagrams: give a (host, port) address")
        self.address = (str(address[0]), int(address[1]))
        self.facility = self.facility_names[facility] if isinstance(facility, str) else facility
        self.socktype = socket.SOCK_DGRAM
        self.unixsocket = False
        self.socket = None
        self.ident = ident
        self.max_size = max_size
        self.json_formatter = JsonFormatter()
        self._queue: queue.Queue[bytes | None] = queue.Queue(queue_size)
        self._sender: threading.Thread | None = None
        self._sender_pid = 0
        self._sender_lock = threading.Lock()
        self._warn = RateLimitedWarning(source="c2cwsgiutils logging")
        self._hostname = self.json_formatter.host

    def frame(self, record: logging.LogRecord) -> bytes:
        """Return the datagram of a record: an RFC 5424 header, then ``@cee: `` and the JSON.

        ``@cee: `` with its space is the original's marker: consumers that look for it find it.
        """
        priority = self.facility * 8 + syslog_severity(record.levelno)
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
            timespec="microseconds"
        )
        stamp = stamp.replace("+00:00", "Z")
        header = f"<{priority}>1 {stamp} {self._hostname} {self.ident} {record.process} - - @cee: ".encode()
        return header + fit(self.json_formatter.fields(record), self.max_size - len(header))

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record's datagram for the sender thread; never block."""
        try:
            datagram = self.frame(record)
        except Exception:
            self.handleError(record)
            return
        self._ensure_sender()
        try:
            self._queue.put_nowait(datagram)
        except queue.Full:
            self._warn(
                f"syslog queue full ({self._queue.maxsize} records): dropping records for {self.address}"
            )

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        """Warn at most once a minute instead of printing a traceback per record."""
        self._warn(f"cannot format a log record for syslog: {sys.exc_info()[1]!r}")

    def _ensure_sender(self) -> None:
        pid = os.getpid()
        if self._sender is not None and self._sender_pid == pid and self._sender.is_alive():
            return
        with self._sender_lock:
            if self._sender is None or self._sender_pid != pid or not self._sender.is_alive():
                if self._sender_pid != pid:  # forked: the parent's queue and thread are not ours
                    self._queue = queue.Queue(self._queue.maxsize)
                self._sender_pid = pid
                self._sender = threading.Thread(
                    target=self._send_forever, name="c2cwsgiutils-syslog", daemon=True
                )
                self._sender.start()

    def _send_forever(self) -> None:
        sock: socket.socket | None = None
        target: Any = None
        retry_at = 0.0
        while True:
            datagram = self._queue.get()
            if datagram is None:
                self._queue.task_done()
                break
            try:
                if target is None:
                    if time.monotonic() < retry_at:
                        continue  # still unresolvable: drop rather than pile up
                    family, _, _, _, target = socket.getaddrinfo(
                        self.address[0], self.address[1], type=socket.SOCK_DGRAM
                    )[0]
                    sock = socket.socket(family, socket.SOCK_DGRAM)
                assert sock is not None  # noqa: S101 (set with target)
                sock.sendto(datagram, target)
            except OSError as error:
                self._warn(f"cannot send to syslog at {self.address[0]}:{self.address[1]}: {error}")
                if sock is not None:
                    sock.close()
                sock, target, retry_at = None, None, time.monotonic() + 5
            finally:
                self._queue.task_done()
        if sock is not None:
            sock.close()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queued datagrams are sent (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Send what is queued, then stop the sender."""
        sender = self._sender
        if sender is not None and sender.is_alive() and self._sender_pid == os.getpid():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=1)
            sender.join(timeout=2)
        logging.Handler.close(self)


def fit(fields: dict[str, Any], limit: int) -> bytes:
    """Serialise ``fields`` in at most ``limit`` bytes, cutting long texts to a common length."""
    data = dumps(fields)
    if len(data) <= limit:
        return data
    fields = dict(fields, truncated=len(data))

    def capped(cap: int) -> bytes:
        return dumps(
            {
                key: value[:cap] + TRUNCATED if isinstance(value, str) and len(value) > cap else value
                for key, value in fields.items()
            }
        )

    # The longest common length of the texts that fits: a bisection, for oversized records only.
    low, high = 0, max((len(value) for value in fields.values() if isinstance(value, str)), default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if len(capped(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    data = capped(low)
    if len(data) <= limit:
        return data
    # Too many fields to fit at all: the essentials only.
    core = {key: fields.get(key) for key in ("level", "level_name", "facility", "timestamp", "truncated")}
    return dumps({**core, "short_message": TRUNCATED})


# The default logging configuration, used when the app's ini file has no logging sections.

LOG_TYPES = ("console", "json", "syslog", "logstash")


def parse_log_types(raw: str) -> tuple[str, ...]:
    """Parse ``LOG_TYPE``: one of console, json, syslog (``logstash``: the same), or a comma list."""
    types = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    unknown = [name for name in types if name not in LOG_TYPES]
    if unknown or not types:
        raise ValueError(f"expected one or more of {', '.join(LOG_TYPES)}, separated by commas")
    return types


def parse_level(raw: str) -> str:
    """Parse a log level name, in any case."""
    level = raw.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError("expected a level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def parse_port(raw: str) -> int:
    """Parse a UDP port."""
    port = int_at_least(1)(raw)
    if port > 65535:
        raise ValueError("expected a port, 1 to 65535")
    return port


@dataclasses.dataclass(frozen=True)
class LoggingSettings(SettingsGroup):
    """The default logging configuration's settings; the ini file may use them as ``%(NAME)s`` too."""

    TITLE = "Logging"

    log_type: tuple[str, ...] = setting(
        "LOG_TYPE",
        None,
        ("console",),
        "Where records go: `console` (text on stdout), `json` (JSON lines on stdout), `syslog` "
        "(CEE over UDP to `LOG_HOST:LOG_PORT`; `logstash` is the original's name for it), or a "
        "comma list.",
        parse=parse_log_types,
    )
    log_host: str = setting("LOG_HOST", None, "localhost", "The syslog host of `LOG_TYPE=syslog`.")
    log_port: int = setting("LOG_PORT", None, 514, "Its UDP port.", parse=parse_port)
    log_level: str = setting("LOG_LEVEL", None, "INFO", "Level of the app's own loggers.", parse=parse_level)
    c2cwsgiutils_log_level: str = setting(
        "C2CWSGIUTILS_LOG_LEVEL", None, "INFO", "Level of the `c2cwsgiutils` loggers.", parse=parse_level
    )
    sql_log_level: str = setting(
        "SQL_LOG_LEVEL",
        None,
        "WARNING",
        "Level of the `sqlalchemy.engine` logger (`INFO` logs every statement).",
        parse=parse_level,
    )
    gunicorn_log_level: str = setting(
        "GUNICORN_LOG_LEVEL", None, "INFO", "Level of gunicorn's error and access logs.", parse=parse_level
    )
    other_log_level: str = setting(
        "OTHER_LOG_LEVEL", None, "WARNING", "Level of every other logger (the root).", parse=parse_level
    )
    config: str = setting(
        "C2CWSGIUTILS_LOGGING",
        None,
        "ini",
        "`ini`: the ini file's logging sections when it has some, else the default configuration "
        "built from these settings; `default`: the default configuration in any case.",
        parse=lambda raw: _choice(raw, ("ini", "default")),
    )


def _choice(raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value


class RequestFormatter(logging.Formatter):
    """A text formatter that can show ``%(request_id)s``: ``-`` for records outside requests."""

    def format(self, record: logging.LogRecord) -> str:
        """Give the record a ``request_id`` attribute if it has none, then format it."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_tracking.current_request_id.get() or "-"
        return super().format(record)


CONSOLE_FORMAT = "%(asctime)s %(levelname)-5.5s [%(name)s][%(process)d][%(request_id)s] %(message)s"


def default_config(settings: LoggingSettings, app_logger: str | None = None) -> dict[str, Any]:
    """Return the default configuration (for ``logging.config.dictConfig``)."""
    handlers: dict[str, dict[str, Any]] = {}
    for log_type in settings.log_type:
        if log_type == "console":
            handlers["console"] = {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "console",
            }
        elif log_type == "json":
            handlers["json"] = {"()": f"{__name__}.JsonLogHandler"}
        else:
            handlers["syslog"] = {
                "()": f"{__name__}.PyramidCeeSysLogHandler",
                "address": (settings.log_host, settings.log_port),
            }
    loggers: dict[str, dict[str, Any]] = {
        "c2cwsgiutils": {"level": settings.c2cwsgiutils_log_level},
        "sqlalchemy.engine": {"level": settings.sql_log_level},
        # gunicorn's own handlers are replaced: its records go through the ones above.
        "gunicorn.error": {"level": settings.gunicorn_log_level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": settings.gunicorn_log_level, "handlers": [], "propagate": True},
    }
    if app_logger:
        loggers[app_logger] = {"level": settings.log_level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"console": {"()": f"{__name__}.RequestFormatter", "format": CONSOLE_FORMAT}},
        "handlers": handlers,
        "loggers": loggers,
        "root": {"level": settings.other_log_level, "handlers": list(handlers)},
    }


def setup_default_logging(app_logger: str | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Apply the default configuration, from the environment."""
    logging.config.dictConfig(default_config(LoggingSettings.resolve(None, environ), app_logger))
