"""Application metrics: timers, gauges and counters, sent to every backend that is switched on.

::

    from c2cwsgiutils import stats

    with stats.timer_context(["sql", "read_hello"]):  # or stats.timer_context("sql", "read_hello")
        ...
    timer = stats.timer(["export"])
    ...
    timer.stop(tags={"format": "csv"})
    stats.increment_counter(["logins"], tags={"method": "oidc"})
    stats.set_gauge(["queue", "length"], 42)

A key is a list of parts (or the parts as arguments); tags are a keyword argument. The backends
are chosen by settings when :mod:`c2cwsgiutils.stats_pyramid` is included: the in-memory one of
``{C2C_BASE_PATH}/stats.json`` (``STATS_VIEW``), statsd (``STATSD_ADDRESS``) and Prometheus
(:mod:`c2cwsgiutils.prometheus`), several at once. With none, each call returns at once.

The backends are process-wide (:data:`BACKENDS`), as the functions above take no request:
:func:`reset` empties them, for tests.
"""

import atexit
import collections
import dataclasses
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from c2cwsgiutils.config_utils import SettingsGroup, int_at_least, parse_bool, setting
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning

Key = tuple[str, ...]
Tags = Mapping[str, Any] | None

STATSD_TAG_PREFIX = "STATSD_TAG_"
"""``STATSD_TAG_<NAME>=value`` adds the tag ``<name>:value`` (lower-cased name) to every statsd line."""


def _statsd_address(raw: str) -> str:
    parse_address(raw)
    return raw.strip()


@dataclasses.dataclass(frozen=True)
class StatsSettings(SettingsGroup):
    """Where the metrics go."""

    TITLE = "Metrics"

    view: bool = setting(
        "STATS_VIEW",
        "c2c.stats_view",
        False,
        "Keep the metrics in memory and show them at `{C2C_BASE_PATH}/stats.json`, summed over the "
        "workers of this gunicorn.",
        parse=parse_bool,
    )
    view_secret: str | None = setting(
        "STATS_VIEW_SECRET",
        "c2c.stats_view_secret",
        None,
        "If set, `{C2C_BASE_PATH}/stats.json` asks for it (as the other protected views do); unset, "
        "the view is open when `STATS_VIEW` is on.",
        secret=True,
    )
    statsd_address: str | None = setting(
        "STATSD_ADDRESS",
        "c2c.statsd_address",
        None,
        "Send the metrics to this statsd server over UDP: `host:port` or `[ipv6]:port`.",
        parse=_statsd_address,
    )
    statsd_prefix: str = setting(
        "STATSD_PREFIX",
        "c2c.statsd_prefix",
        "",
        "Prefix of every statsd metric name (a `.` is added after it).",
    )
    statsd_max_packet: int = setting(
        "STATSD_MAX_PACKET",
        "c2c.statsd_max_packet",
        1432,
        "Largest statsd datagram, in bytes: lines are packed together up to it (1432 fits an "
        "Ethernet frame; use 512 across the Internet).",
        parse=int_at_least(64),
    )
    server_timing: bool = setting(
        "C2C_SERVER_TIMING",
        "c2c.server_timing",
        True,
        "With a metrics backend on, add a `Server-Timing` header (whole request, rendering, SQL) to "
        "every response.",
        parse=parse_bool,
    )


# Keys and names.

_MAX_CACHED_NAMES = 10_000
"""Names (or keys) a backend remembers; past that, they are made again at each call."""


def make_key(key: str | Sequence[Any] | None, more: Iterable[Any] = ()) -> Key:
    """Return the parts of a key given as a list, or as parts (``"sql", "read"``)."""
    if key is None:
        parts: tuple[Any, ...] = tuple(more)
    elif isinstance(key, str):
        parts = (key, *more) if more else (key,)
    else:
        parts = (*key, *more) if more else tuple(key)
    for part in parts:
        if type(part) is not str:
            return tuple(map(str, parts))
    return parts


def key_text(key: Key, tags: Tags = None) -> str:
    """Return the key as stats.json shows it: the parts joined by ``/`` (in a part: ``_``), then the tags."""
    text = "/".join(part.replace("/", "_") for part in key)
    if tags:
        text += "{" + ",".join(f"{name}={value}" for name, value in sorted(tags.items())) + "}"
    return text


# The original's rule (``:``, ``|`` and ``.`` are statsd's delimiters), and the control characters:
# a line break would split a line of our packed datagrams.
_STATSD_UNSAFE = re.compile(r"[:|.\x00-\x1f\x7f]")
_STATSD_TAG_UNSAFE = re.compile(r"[,|#:\s]")
STATSD_MAX_NAME = 450
"""Longest statsd name, prefix included (the original's limit): longer ones are cut."""


def statsd_part(part: str) -> str:
    """Return a key part as the original put it in a statsd name: ``:``, ``|``, ``.`` and controls as ``_``.

    Anything else stays (spaces, ``?``, ``(``...), so that the statsd server sanitises the names
    as it did the original's, and the series of existing dashboards go on.
    """
    return _STATSD_UNSAFE.sub("_", part) or "_"


def statsd_tag(value: Any) -> str:
    """Return a tag name or value without the characters that delimit statsd tags."""
    return _STATSD_TAG_UNSAFE.sub("_", str(value))


def parse_address(raw: str) -> tuple[str, int]:
    """Parse ``host:port`` or ``[ipv6]:port``; raise ValueError otherwise."""
    raw = raw.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.%a-zA-Z]+)\]:([0-9]+)|([^:\[\]\s]+):([0-9]+)", raw)
    if match is None:
        raise ValueError("expected host:port or [ipv6]:port")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise ValueError("the port must be between 1 and 65535")
    return host, port


# Backends.


class Backend:
    """Where metrics go. The automatic metrics (:meth:`request`, :meth:`sql`) are timers by default."""

    def timer(self, key: Key, seconds: float, tags: Tags = None) -> None:
        """Record a duration."""

    def gauge(self, key: Key, value: float, tags: Tags = None) -> None:
        """Record the current value of something."""

    def counter(self, key: Key, increment: float, tags: Tags = None) -> None:
        """Add to a counter."""

    def request(self, method: str, route: str, status: int, seconds: float, render: float | None) -> None:
        """Record a request: ``route.{verb}.{route}.{status}`` and ``render...`` timers."""
        self.timer(("route", method, route, str(status)), seconds)
        if render is not None:
            self.timer(("render", method, route, str(status)), render)

    def sql(self, query: str, seconds: float) -> None:
        """Record an SQL query: the ``sql.{normalised query}`` timer."""
        self.timer(("sql", query), seconds)

    def outgoing(self, host: str, method: str, status: str, seconds: float) -> None:
        """Record an outgoing ``requests`` call: the ``outgoing.{host}.{method}.{status}`` timer."""
        self.timer(("outgoing", host, method, status), seconds)


class MemoryBackend(Backend):
    """Keep the metrics of this process in memory, for ``stats.json``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timers: dict[tuple[Key, Any], list[float]] = {}  # [nb, total, min, max]
        self._gauges: dict[tuple[Key, Any], tuple[float, float]] = {}  # (value, when)
        self._counters: dict[tuple[Key, Any], float] = {}
        self._request_keys: dict[tuple[str, str, int], tuple[tuple[Key, Any], tuple[Key, Any]]] = {}

    @staticmethod
    def _tags_key(tags: Tags) -> Any:
        return tuple(sorted(tags.items())) if tags else None

    def timer(self, key: Key, seconds: float, tags: Tags = None) -> None:
        """Count the duration in the timer's number, total, minimum and maximum."""
        self._time((key, self._tags_key(tags) if tags else None), seconds)

    def request(self, method: str, route: str, status: int, seconds: float, render: float | None) -> None:
        """Record a request in the ``route...`` and ``render...`` timers (their keys made once)."""
        keys = self._request_keys.get((method, route, status))
        if keys is None:
            code = str(status)
            keys = ((("route", method, route, code), None), (("render", method, route, code), None))
            if len(self._request_keys) < _MAX_CACHED_NAMES:
                self._request_keys[(method, route, status)] = keys
        self._time(keys[0], seconds)
        if render is not None:
            self._time(keys[1], render)

    def _time(self, full_key: tuple[Key, Any], seconds: float) -> None:
        with self._lock:
            found = self._timers.get(full_key)
            if found is None:
                self._timers[full_key] = [1, seconds, seconds, seconds]
            else:
                found[0] += 1
                found[1] += seconds
                found[2] = min(found[2], seconds)
                found[3] = max(found[3], seconds)

    def gauge(self, key: Key, value: float, tags: Tags = None) -> None:
        """Keep the gauge's value and when it was set (the latest wins across workers)."""
        with self._lock:
            self._gauges[(key, self._tags_key(tags))] = (value, time.time())

    def counter(self, key: Key, increment: float, tags: Tags = None) -> None:
        """Add to the counter."""
        full_key = (key, self._tags_key(tags))
        with self._lock:
            self._counters[full_key] = self._counters.get(full_key, 0) + increment

    def dump(self, reset: bool = False) -> dict[str, Any]:
        """Return this process's metrics (JSON-ready, mergeable by :func:`merge`), and clear them if asked."""
        with self._lock:
            timers, gauges, counters = self._timers, self._gauges, self._counters
            if reset:
                self._timers, self._gauges, self._counters = {}, {}, {}
            return {
                "timers": {
                    key_text(key, dict(tags or ())): list(values) for (key, tags), values in timers.items()
                },
                "gauges": {
                    key_text(key, dict(tags or ())): list(value) for (key, tags), value in gauges.items()
                },
                "counters": {
                    key_text(key, dict(tags or ())): value for (key, tags), value in counters.items()
                },
            }


def merge(dumps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the dumps of several processes into the stats.json answer."""
    timers: dict[str, list[float]] = {}
    gauges: dict[str, list[float]] = {}
    counters: dict[str, float] = {}
    for dump in dumps:
        for key, (nb, total, minimum, maximum) in dump.get("timers", {}).items():
            found = timers.get(key)
            if found is None:
                timers[key] = [nb, total, minimum, maximum]
            else:
                found[0] += nb
                found[1] += total
                found[2] = min(found[2], minimum)
                found[3] = max(found[3], maximum)
        for key, (value, when) in dump.get("gauges", {}).items():
            if key not in gauges or when > gauges[key][1]:
                gauges[key] = [value, when]
        for key, value in dump.get("counters", {}).items():
            counters[key] = counters.get(key, 0) + value
    return {
        "timers": {
            key: {
                "nb": int(nb),
                "avg_ms": round(total / nb * 1000, 3),
                "min_ms": round(minimum * 1000, 3),
                "max_ms": round(maximum * 1000, 3),
            }
            for key, (nb, total, minimum, maximum) in sorted(timers.items())
        },
        "gauges": {key: value for key, (value, _) in sorted(gauges.items())},
        "counters": dict(sorted(counters.items())),
    }


class StatsdBackend(Backend):
    """Send statsd lines over UDP, packed into datagrams of at most ``max_packet`` bytes.

    A call formats its line and appends it to a queue (a bounded deque: when nothing can keep up,
    the oldest lines go). When a datagram's worth of lines is queued, the caller sends it, on a
    non-blocking socket: one ``sendto`` per few dozen calls, never a wait. What is left is sent by
    a background thread every ``flush_interval`` seconds; that thread also resolves the address
    (again every ``resolve_interval`` seconds, and after an error), so that a call never waits
    for DNS. Any failure costs a warning on stderr, at most one a minute, never an exception in
    the caller.

    Why the callers send the full datagrams: under load, a sender thread's ``sendto`` releases
    the GIL and must win it back from the busy request threads, a switch per datagram; the same
    ``sendto`` in a thread that holds the GIL is about a hundred times cheaper (bench/results.md,
    "Design figures").
    """

    def __init__(  # noqa: PLR0917 (all but the address have defaults)
        self,
        address: str,
        prefix: str = "",
        tags: Mapping[str, str] | None = None,
        max_packet: int = 1432,
        flush_interval: float = 0.1,
        resolve_interval: float = 60.0,
        max_queue: int = 100_000,
    ) -> None:
        self.address = address
        self.host, self.port = parse_address(address)
        self.prefix = prefix + "." if prefix and not prefix.endswith(".") else prefix
        self.tags_suffix = (
            "|#" + ",".join(f"{statsd_tag(name)}:{statsd_tag(value)}" for name, value in sorted(tags.items()))
            if tags
            else ""
        )
        self.max_packet = max_packet
        self.flush_interval = flush_interval
        self.resolve_interval = resolve_interval
        self._lines: collections.deque[str] = collections.deque(maxlen=max_queue)
        self._queued = 0  # characters queued since the last datagram: approximate, between threads
        self._warn = RateLimitedWarning(source="c2cwsgiutils stats")
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()
        self._names: dict[Key, str] = {}
        self._request_names: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._socket: socket.socket | None = None
        self._target: Any = None
        self._resolved_at = 0.0
        os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self.close)

    # Formatting, in the caller's thread.

    def name(self, key: Key) -> str:
        """Return the statsd name of a key: the prefix, then the sanitised parts joined by dots."""
        name = self._names.get(key)
        if name is None:
            name = (self.prefix + ".".join(statsd_part(part) for part in key))[:STATSD_MAX_NAME]
            if len(self._names) < _MAX_CACHED_NAMES:
                self._names[key] = name
        return name

    def _tags(self, tags: Tags) -> str:
        if not tags:
            return self.tags_suffix
        own = ",".join(f"{statsd_tag(name)}:{statsd_tag(value)}" for name, value in sorted(tags.items()))
        return (self.tags_suffix + "," + own) if self.tags_suffix else "|#" + own

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._queued += len(line) + 1
        if self._queued >= self.max_packet:
            self._send_one()
        if self._thread is None:
            self._start()

    def timer(self, key: Key, seconds: float, tags: Tags = None) -> None:
        """Queue ``name:ms|ms``."""
        name = self._names.get(key) or self.name(key)
        self._emit(f"{name}:{seconds * 1000:.3f}|ms{self._tags(tags) if tags else self.tags_suffix}")

    def request(self, method: str, route: str, status: int, seconds: float, render: float | None) -> None:
        """Queue the ``route...`` and ``render...`` timers (their names made once per route and status)."""
        names = self._request_names.get((method, route, status))
        if names is None:
            names = (
                self.name(("route", method, route, str(status))),
                self.name(("render", method, route, str(status))),
            )
            if len(self._request_names) < _MAX_CACHED_NAMES:
                self._request_names[(method, route, status)] = names
        suffix = self.tags_suffix
        line = f"{names[0]}:{seconds * 1000:.3f}|ms{suffix}"
        if render is not None:
            line += f"\n{names[1]}:{render * 1000:.3f}|ms{suffix}"
        self._emit(line)

    def gauge(self, key: Key, value: float, tags: Tags = None) -> None:
        """Queue ``name:value|g`` (below 0, after a ``0|g``: statsd reads ``-1`` as a change, not a value)."""
        name, suffix = self.name(key), self._tags(tags)
        if value < 0:
            self._emit(f"{name}:0|g{suffix}")
        self._emit(f"{name}:{value:g}|g{suffix}")

    def counter(self, key: Key, increment: float, tags: Tags = None) -> None:
        """Queue ``name:increment|c``."""
        self._emit(f"{self.name(key)}:{increment:g}|c{self._tags(tags)}")

    # Sending, in the sender thread.

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="c2cwsgiutils-statsd", daemon=True)
                self._thread.start()

    def _after_fork(self) -> None:
        # The parent's thread is not in the child; the child starts its own when it sends.
        self._thread = None
        self._thread_lock = threading.Lock()
        self._lines.clear()
        self._queued = 0
        self._socket = None
        self._target = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def _resolve(self) -> bool:
        now = time.monotonic()
        if self._target is not None and now - self._resolved_at < self.resolve_interval:
            return True
        try:
            family, _, _, _, target = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except OSError as error:
            if self._target is None:
                self._warn(f"cannot resolve the statsd address {self.address}: {error}; metrics are dropped")
                return False
            return True  # keep the last good address
        if self._socket is None or self._socket.family != family:
            if self._socket is not None:
                self._socket.close()
            self._socket = socket.socket(family, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        self._target = target
        self._resolved_at = now
        return True

    def _packet(self) -> bytes | None:
        """Take queued lines, as many as fit in one datagram (a longer line goes alone)."""
        current: list[bytes] = []
        size = -1
        lines = self._lines
        while True:
            try:
                line = lines.popleft().encode("utf-8")
            except IndexError:
                break
            if current and size + 1 + len(line) > self.max_packet:
                lines.appendleft(line.decode("utf-8"))  # the next datagram's first
                break
            size += 1 + len(line)
            current.append(line)
        return b"\n".join(current) if current else None

    def _send_one(self) -> None:
        """Send a datagram of queued lines from the caller's thread, if the address is resolved."""
        self._queued = 0
        sock, target = self._socket, self._target
        if sock is None or target is None:
            return  # the sender thread resolves the address, then sends
        packet = self._packet()
        if packet is None:
            return
        try:
            sock.sendto(packet, target)
        except OSError as error:  # not sent: statsd is down or the socket's buffer is full
            self._resolved_at = 0.0
            self._warn(f"cannot send metrics to statsd at {self.address}: {error}")

    def flush(self) -> None:
        """Send what is queued now."""
        if not self._lines:
            return
        try:
            if not self._resolve():
                self._lines.clear()
                return
            self._queued = 0
            assert self._socket is not None  # noqa: S101 (_resolve made it)
            while (packet := self._packet()) is not None:
                self._socket.sendto(packet, self._target)
        except OSError as error:
            self._resolved_at = 0.0  # resolve again next time
            self._warn(f"cannot send metrics to statsd at {self.address}: {error}")
        except Exception as error:  # never let the sender thread die
            self._warn(f"statsd sender failed: {error!r}")

    def close(self) -> None:
        """Send what is left and stop the sender thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1)
        self.flush()
        if self._socket is not None:
            self._socket.close()
            self._socket = None


BACKENDS: list[Backend] = []
"""The backends of this process; empty when no metric goes anywhere."""


def add_backend(backend: Backend) -> None:
    """Send the metrics to ``backend`` too."""
    BACKENDS.append(backend)


def backend(kind: type[Backend]) -> Any:
    """Return the backend of this type, or None."""
    return next((found for found in BACKENDS if isinstance(found, kind)), None)


def reset() -> None:
    """Remove every backend (for tests); the statsd senders are stopped."""
    for found in BACKENDS:
        if isinstance(found, StatsdBackend):
            found.close()
    BACKENDS.clear()


def statsd_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the tags of the ``STATSD_TAG_<NAME>`` environment variables."""
    environ = os.environ if environ is None else environ
    return {
        name[len(STATSD_TAG_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(STATSD_TAG_PREFIX) and len(name) > len(STATSD_TAG_PREFIX) and value
    }


# The API.


class _NoTimer:
    """What :func:`timer_context` returns when no backend is on."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


_NO_TIMER = _NoTimer()


class Timer:
    """A running timer: :meth:`stop` records the time since it was made."""

    __slots__ = ("_key", "_start", "_tags")

    def __init__(self, key: Key | None, tags: Tags = None) -> None:
        self._key = key
        self._tags = tags
        self._start = time.perf_counter()

    def stop(
        self,
        key: str | Sequence[Any] | None = None,
        *more: Any,
        tags: Tags = None,
        key_final: str | Sequence[Any] | None = None,
    ) -> float:
        """Record the duration under the timer's key (or ``key``, if given now); return it, in seconds.

        ``key_final`` is the original's name of ``key``: ``timer.stop(key_final=["export", "csv"])``.
        """
        seconds = time.perf_counter() - self._start
        if key_final is not None:
            if key is not None:
                raise TypeError("give the final key as key or as key_final, not both")
            key = key_final
        final = make_key(key, more) if key is not None else self._key
        if not final:
            raise ValueError("a timer needs a key, given to timer() or to stop()")
        all_tags = self._tags if tags is None else {**(self._tags or {}), **tags}
        for found in BACKENDS:
            found.timer(final, seconds, all_tags)
        return seconds

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        seconds = time.perf_counter() - self._start
        key = self._key
        if not key:
            raise ValueError("a timer needs a key, given to timer() or to stop()")
        for found in BACKENDS:
            found.timer(key, seconds, self._tags)


def timer(key: str | Sequence[Any] | None = None, *more: Any, tags: Tags = None) -> Timer:
    """Start a timer; ``.stop()`` records it (the key may also be given to ``stop``)."""
    return Timer(make_key(key, more) if key is not None else None, tags)


def timer_context(key: str | Sequence[Any], *more: Any, tags: Tags = None) -> Any:
    """Return a context manager that records the time its block takes."""
    if not BACKENDS:
        return _NO_TIMER
    return Timer(make_key(key, more), tags)


def set_gauge(key: str | Sequence[Any], value: float, tags: Tags = None) -> None:
    """Set a gauge to ``value``."""
    if not BACKENDS:
        return
    parts = make_key(key)
    for found in BACKENDS:
        found.gauge(parts, value, tags)


def increment_counter(key: str | Sequence[Any], increment: float = 1, tags: Tags = None) -> None:
    """Add ``increment`` to a counter."""
    if not BACKENDS:
        return
    parts = make_key(key)
    for found in BACKENDS:
        found.counter(parts, increment, tags)
