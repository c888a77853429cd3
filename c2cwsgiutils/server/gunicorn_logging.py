"""gunicorn's logger: secrets scrubbed, the app's logging configuration, structured access records.

Named in the gunicorn settings. Besides scrubbing, it applies the app's logging configuration in
the master too (the workers apply it when they load the app), so that with ``LOG_TYPE=json``
gunicorn's own records are JSON as well; and each access record carries its fields (``method``,
``path``, ``status``, ``bytes``, ``duration``, ``request_id``...) for the JSON handlers.

The access record is built, formatted and written by a thread of its own (:class:`AccessWriter`,
in batches): the request's thread only appends references to a deque, and only the atoms the
format names are computed (:class:`LazyAtoms`). The JSON handlers write each batch with one
``write`` (:func:`c2cwsgiutils.pyramid_logging.batched_writes`), not one per record: a background
thread's system call hands the GIL to the busy request threads and must win it back. What each
step gained is in bench/results.md, "Design figures".
"""

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from gunicorn import glogging

from c2cwsgiutils import loader, pyramid_logging, request_tracking, wsgi_app
from c2cwsgiutils.config_utils import is_ascii_int
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from c2cwsgiutils.scrub import scrub_query_string, scrub_request_line, scrub_text, scrub_url

_WARN = RateLimitedWarning(source="c2cwsgiutils access log")
DEFAULT_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'  # gunicorn's
# The atoms that may hold a query string, and how each one is scrubbed.
_SCRUBBED_ATOMS: dict[str, Callable[[str], str]] = {
    "r": scrub_request_line,  # "GET /path?query HTTP/1.1": only the target is scrubbed
    "q": scrub_query_string,
    "f": scrub_url,
    "{referer}i": scrub_url,
}


def _scrubbed(scrub: Callable[[str], str], value: Any) -> Any:
    return scrub(value) if isinstance(value, str) and "=" in value else value


def _scrub_message(msg: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return the message formatted, then scrubbed, to be logged without arguments."""
    if args:
        try:
            msg = str(msg) % args
        except (TypeError, ValueError, KeyError):
            return (scrub_text(str(msg)), *(scrub_text(arg) if isinstance(arg, str) else arg for arg in args))
    return (scrub_text(str(msg)),)


class ScrubbingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with secrets removed from access logs and from its own warnings and errors.

    gunicorn quotes the request line when it rejects one (``Invalid HTTP request line: ...``) or
    when the app fails outside of its error views (``Error handling request GET /path?...``).
    """

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then apply the app's logging configuration over them."""
        super().setup(cfg)
        path = wsgi_app.config_file()
        try:
            loader.setup_logging(path)
        except Exception as error:
            self.warning("cannot apply the logging configuration of %s in the master: %s", path, error)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Queue the access record for the writer thread: the request's thread only takes references.

        The record is built, formatted and written by :class:`AccessWriter`'s thread, with the time,
        thread and request ID of the request; when too many wait, by the caller (never dropped).
        """
        if not self.access_log_enabled or not self.access_log.isEnabledFor(logging.INFO):
            return
        entry = _AccessEntry(
            resp,
            req,
            environ,
            request_time,
            request_tracking.current_request_id.get(),
            time.time(),
            threading.get_ident(),
            threading.current_thread().name,
        )
        writer = self._access_writer
        if writer is None or writer.pid != os.getpid():
            writer = self._access_writer = AccessWriter(self.write_accesses)
        writer.put(entry)

    _access_writer: "AccessWriter | None" = None

    def write_accesses(self, entries: list["_AccessEntry"]) -> None:
        """Log the access records of ``entries``, the JSON handlers' lines with one write each."""
        logger = self.access_log
        with pyramid_logging.batched_writes():
            for entry in entries:
                record = self.access_record(entry)
                if record is not None and logger.isEnabledFor(record.levelno):
                    logger.handle(record)

    def access_record(self, entry: "_AccessEntry") -> logging.LogRecord | None:
        """Return the access record of ``entry``, with its fields (for the JSON handlers)."""
        try:
            resp, environ = entry.resp, entry.environ
            atoms = LazyAtoms(self, entry)
            query = environ.get("QUERY_STRING", "")
            user_agent = environ.get("HTTP_USER_AGENT", "-")
            fields = {
                "method": environ.get("REQUEST_METHOD"),
                "path": scrub_url(
                    environ.get("RAW_URI") or (environ.get("PATH_INFO", "") + (f"?{query}" if query else ""))
                ),
                "status": _status_code(resp),
                "bytes": getattr(resp, "sent", None),
                "duration": entry.request_time.total_seconds(),
                "request_id": entry.request_id or _response_request_id(resp),
                "client_addr": environ.get("REMOTE_ADDR", "-"),
                "user_agent": user_agent,
            }
            logger = self.access_log
            access_format = self.cfg.access_log_format
            # gunicorn's default format, the usual one, is written directly; any other through atoms.
            message, args = (
                (atoms.default_line(), ()) if access_format == DEFAULT_FORMAT else (access_format, (atoms,))
            )
            record: logging.LogRecord = logger.makeRecord(
                logger.name,
                logging.INFO,
                __file__,
                _ACCESS_LINE,
                message,
                args,
                None,
                "access",
                fields,
            )
            # The request's moment and thread, not the writer's.
            record.relativeCreated -= (record.created - entry.created) * 1000
            record.created, record.msecs = entry.created, entry.created % 1 * 1000
            record.thread, record.threadName = entry.thread, entry.thread_name
        except Exception:
            self.exception("cannot write an access record")
            return None
        return record

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """Return all of gunicorn's access log atoms, scrubbed (:class:`LazyAtoms` computes only some)."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key, scrub in _SCRUBBED_ATOMS.items():
            if key in atoms:
                atoms[key] = _scrubbed(scrub, atoms[key])
        return atoms

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at CRITICAL, scrubbed."""
        super().critical(*_scrub_message(msg, args), **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR, scrubbed."""
        super().error(*_scrub_message(msg, args), **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING, scrubbed."""
        super().warning(*_scrub_message(msg, args), **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the traceback, scrubbed."""
        super().exception(*_scrub_message(msg, args), **kwargs)


def _status_code(resp: Any) -> int | None:
    """Return the response's status code.

    The Response gunicorn builds for a request it rejects itself (a 400 for a malformed request)
    has only the status line, no ``status_code``.
    """
    code = getattr(resp, "status_code", None)
    if code is not None:
        return int(code)
    status = str(getattr(resp, "status", "") or "").split(None, 1)
    return int(status[0]) if status and is_ascii_int(status[0]) else None


def _response_request_id(resp: Any) -> str | None:
    for name, value in getattr(resp, "headers", ()):
        if name.lower() == "x-request-id":
            return str(value)
    return None


_ACCESS_LINE = ScrubbingLogger.access_record.__code__.co_firstlineno


class _AccessEntry(NamedTuple):
    """What the request's thread hands to the access log writer: references, nothing computed."""

    resp: Any
    req: Any
    environ: dict[str, Any]
    request_time: Any
    request_id: str | None
    created: float
    thread: int
    thread_name: str


class LazyAtoms(Mapping[str, Any]):
    """gunicorn's access log atoms, each computed when the format asks for it.

    gunicorn builds every atom of every request, a dictionary of all the request and response
    headers and of the whole WSGI environ included, then copies it to escape quotes, whatever the
    format uses (bench/results.md, "Design figures"). This computes only the atoms the format
    names, with the same values as ``SafeAtoms(ScrubbingLogger.atoms(...))``: secrets scrubbed,
    ``"`` escaped, ``-`` for a missing one, ``{header}i``/``{header}o``/``{variable}e`` in any case.
    """

    def __init__(self, logger: ScrubbingLogger, entry: _AccessEntry) -> None:
        self._logger = logger
        self._entry = entry

    def __getitem__(self, key: str) -> Any:
        value = self._atom(key)
        scrub = _SCRUBBED_ATOMS.get(key.lower() if key[:1] == "{" else key)
        if scrub is not None:
            value = _scrubbed(scrub, value)
        return _escaped(value)

    def default_line(self) -> str:
        """Return the line of gunicorn's default format, :data:`DEFAULT_FORMAT`.

        The same text as the format with the atoms, made directly: the generic way was a large
        part of the writer thread's time per record (bench/results.md, "Design figures").
        """
        entry = self._entry
        environ, resp = entry.environ, entry.resp
        user = self._logger._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        status = resp.status
        sent = getattr(resp, "sent", None)
        request_line = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        return (
            f"{_escaped(environ.get('REMOTE_ADDR', '-'))} - {_escaped(user or '-')} {_stamp(entry.created)}"
            f' "{_escaped(_scrubbed(scrub_request_line, request_line))}"'
            f" {status.split(None, 1)[0] if isinstance(status, str) else status}"
            f" {sent if sent is not None else '-'}"
            f' "{_escaped(_scrubbed(scrub_url, environ.get("HTTP_REFERER", "-")))}"'
            f' "{_escaped(environ.get("HTTP_USER_AGENT", "-"))}"'
        )

    def __bool__(self) -> bool:
        return True  # logging asks, before formatting: never compute every atom for that

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def _all(self) -> dict[str, Any]:
        entry = self._entry
        atoms: dict[str, Any] = self._logger.atoms(entry.resp, entry.req, entry.environ, entry.request_time)
        return atoms

    def _atom(self, key: str) -> Any:  # noqa: PLR0911 (one return per kind of atom)
        entry = self._entry
        environ, resp = entry.environ, entry.resp
        if key.startswith("{"):
            return self._header(key.lower())
        simple = _SIMPLE_ATOMS.get(key)
        if simple is not None:
            return environ.get(simple[0], simple[1])
        if key == "t":
            return _stamp(entry.created)
        if key == "r":
            return f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        if key == "s":
            status = resp.status
            return status.split(None, 1)[0] if isinstance(status, str) else status
        if key == "u":
            return self._logger._get_user(environ) or "-"
        if key in ("b", "B"):
            sent = getattr(resp, "sent", None)
            return sent if key == "B" else (str(sent) if sent is not None else "-")
        if key == "p":
            return f"<{os.getpid()}>"
        seconds, microseconds = entry.request_time.seconds, entry.request_time.microseconds
        if key == "T":
            return seconds
        if key == "D":
            return seconds * 1000000 + microseconds
        if key == "M":
            return seconds * 1000 + int(microseconds / 1000)
        if key == "L":
            return f"{seconds}.{microseconds:06d}"
        return "-"

    def _header(self, key: str) -> Any:
        name, kind = key[1:-2], key[-1:]
        if not key.endswith(("}i", "}o", "}e")):
            return "-"
        entry = self._entry
        if kind == "e":
            items: Any = entry.environ.items()
        else:
            headers = (
                entry.req.headers if kind == "i" and hasattr(entry.req, "headers") else entry.resp.headers
            )
            items = headers.items() if hasattr(headers, "items") else headers
        found: Any = "-"
        for header, value in items:  # the last one wins, as in gunicorn's dictionary
            if header.lower() == name:
                found = value
        return found


def _escaped(value: Any) -> Any:
    return value.replace('"', '\\"') if isinstance(value, str) and '"' in value else value


_last_stamp: tuple[int, str] = (-1, "")


def _stamp(created: float) -> str:
    """Return the ``t`` atom of a moment: its second's, made once per second."""
    global _last_stamp  # noqa: PLW0603 (a one-entry cache; a race only makes it twice)
    second = int(created)
    if _last_stamp[0] != second:
        _last_stamp = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
    return _last_stamp[1]


# Atoms read from the environ: (key, default).
_SIMPLE_ATOMS = {
    "h": ("REMOTE_ADDR", "-"),
    "m": ("REQUEST_METHOD", None),
    "U": ("PATH_INFO", None),
    "q": ("QUERY_STRING", None),
    "H": ("SERVER_PROTOCOL", None),
    "f": ("HTTP_REFERER", "-"),
    "a": ("HTTP_USER_AGENT", "-"),
}


class AccessWriter:
    """A thread that writes the access records of this process, off the requests' threads.

    The requests' threads append to a deque (no lock, no wake-up); the thread wakes every
    ``interval`` seconds and hands what has piled up to ``write`` as a list (at most ``batch``
    entries at a time). Waking it for every record (a ``queue.Queue``) cost more CPU than
    writing the record in place: the GIL and a futex passed between threads per request. When
    ``size`` entries wait, the caller writes its own (slower, never lost). At exit, what is left
    is written (a worker killed with SIGKILL loses it).
    """

    def __init__(
        self, write: Callable[[list[Any]], None], size: int = 10000, interval: float = 0.01, batch: int = 500
    ) -> None:
        self.pid = os.getpid()
        self._write = write
        self._size = size
        self._interval = interval
        self._batch = batch
        self._entries: collections.deque[Any] = collections.deque()
        self._writing = 0  # entries taken from the deque and not written yet
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="c2cwsgiutils-access-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def put(self, entry: Any) -> None:
        """Queue an entry; write it now if too many wait."""
        if len(self._entries) >= self._size:
            self._write([entry])
        else:
            self._entries.append(entry)

    def _drain(self) -> None:
        entries, popleft = self._entries, self._entries.popleft
        while entries:  # only this thread takes entries: the length is a floor
            batch = [popleft() for _ in range(min(len(entries), self._batch))]
            self._writing = len(batch)
            try:
                self._write(batch)
            except Exception as error:  # the thread must go on: the next batch may be fine
                _WARN(f"cannot write {len(batch)} access records: {error!r}")
            finally:
                self._writing = 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()
        self._drain()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queued entries are written (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (self._entries or self._writing) and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Write what is queued, then stop the thread (in the process that started it)."""
        if self.pid != os.getpid() or not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout=5)
