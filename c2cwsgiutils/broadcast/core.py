"""The process-wide broadcaster: subscriptions, the call in this process, stored state, the listener's health.

A :class:`Broadcaster` holds the callbacks of one process and a transport that carries calls to
the other processes (:mod:`.local`, :mod:`.redis_transport`, or :class:`InProcessTransport` when
there is nobody else to reach). The transport's listener thread hands each call it receives to
:meth:`Broadcaster.receive`; stored calls are handed to :meth:`Broadcaster.catch_up`, which applies
each one that this process has not applied yet, so that nothing is applied twice.
"""

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Literal, Protocol, Self

import orjson

from c2cwsgiutils.rate_limited_warning import RateLimitedWarning

LOG = logging.getLogger("c2cwsgiutils.broadcast")

WATCHDOG_INTERVAL = 1.0
"""Seconds between two checks that the listener thread is alive."""

Callback = Callable[..., Any]
ReplyStatus = Literal["answer", "skip", "error"]


class TransportError(Exception):
    """The transport cannot reach the other processes or the stored state right now."""


def _object(data: bytes) -> dict[str, Any]:
    decoded = orjson.loads(data)
    if not isinstance(decoded, dict):
        raise ValueError("not a JSON object")
    return decoded


@dataclasses.dataclass(frozen=True)
class Call:
    """One broadcast call as it travels and as it is stored.

    ``key`` is the state key of a stored call (None for a call that is not stored); ``reply_to``
    is where the sender gathers answers (a socket path or a Redis list) and ``ttl`` how long it
    waits for them.
    """

    id: str
    channel: str
    params: dict[str, Any]
    sender: str
    key: str | None = None
    reply_to: str | None = None
    ttl: float = 0.0
    time: float = 0.0  # when it was sent (time.time()): the newer of two stored calls wins

    def encode(self) -> bytes:
        """Serialise the call; raises TypeError when its parameters are not JSON-serialisable."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse a serialised call; raises ValueError when it is not one."""
        fields = _object(data)
        try:
            call = cls(**fields)
        except TypeError as error:
            raise ValueError(str(error)) from None
        if not (
            isinstance(call.id, str)
            and isinstance(call.channel, str)
            and isinstance(call.params, dict)
            and isinstance(call.sender, str)
            and isinstance(call.key, str | None)
            and isinstance(call.reply_to, str | None)
            and isinstance(call.ttl, int | float)
            and isinstance(call.time, int | float)
        ):
            raise ValueError("a field has the wrong type")
        return call

    def stored_form(self) -> Self:
        """Return the call as it is stored: nobody waits for the answers of a replay."""
        return dataclasses.replace(self, reply_to=None, ttl=0.0)


@dataclasses.dataclass(frozen=True)
class Reply:
    """What a process answers to a call that asks for answers."""

    id: str
    sender: str
    pid: int
    status: ReplyStatus
    answer: Any = None
    error: str | None = None

    def encode(self) -> bytes:
        """Serialise the reply (its answer is already JSON-compatible)."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse a serialised reply; raises ValueError when it is not one."""
        try:
            reply = cls(**_object(data))
        except TypeError as error:
            raise ValueError(str(error)) from None
        if not (isinstance(reply.id, str) and isinstance(reply.sender, str)):
            raise ValueError("a field has the wrong type")
        return reply


class Receiver(Protocol):
    """What a transport's listener hands calls to: the :class:`Broadcaster`."""

    instance_id: str
    warn: RateLimitedWarning

    def receive(self, call: Call) -> Reply:
        """Apply a call that came from another process (or back from this one)."""

    def catch_up(self, calls: list[Call]) -> None:
        """Apply the stored calls this process has not applied yet."""


class Transport(Protocol):
    """Carries calls to the other processes, and keeps the stored ones."""

    name: str

    def start(self) -> None:
        """Start listening (and apply the stored calls); never raises for an unreachable peer."""

    def listener_generation(self) -> int:
        """Return how many listener threads were started: 0 for a transport without one."""

    def listener_alive(self) -> bool:
        """Tell whether the listener thread runs (always True without one)."""

    def restart_listener(self) -> None:
        """Start a new listener thread if the current one is dead."""

    def send(
        self, call: Call, apply_here: Callable[[], None], expect_answers: bool, deadline: float
    ) -> list[Reply]:
        """Deliver ``call`` to the other processes; call ``apply_here`` once, in the right order.

        Return the replies gathered before ``deadline`` (``time.monotonic()``) when asked for.
        """

    def stored(self) -> list[Call]:
        """Return the stored calls; raises :class:`TransportError` when they cannot be read."""

    def queued(self) -> list[Call]:
        """Return the stored calls sent from here that have not reached the others yet."""

    def forget(self, channel: str, key: str, params: dict[str, Any] | None = None) -> None:
        """Remove a stored call (only if its parameters are ``params``, when given).

        Raises :class:`TransportError` when the store cannot be reached.
        """

    def close(self) -> None:
        """Stop the listener and release what the transport holds."""

    def abandon(self) -> None:
        """In a forked child: drop what was inherited without touching the parent's resources."""


class InProcessTransport:
    """No other process to reach: calls apply in this process only, stored calls stay in memory."""

    name = "in-process"

    def __init__(self) -> None:
        self._stored: dict[tuple[str, str], Call] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to start."""

    def listener_generation(self) -> int:
        """There is no listener thread."""
        return 0

    def listener_alive(self) -> bool:
        """There is no listener thread to die."""
        return True

    def restart_listener(self) -> None:
        """There is no listener thread."""

    def send(
        self, call: Call, apply_here: Callable[[], None], expect_answers: bool, deadline: float
    ) -> list[Reply]:
        """Store the call if asked, and apply it here."""
        with self._lock:
            if call.key is not None:
                self._stored[(call.channel, call.key)] = call.stored_form()
            apply_here()
        return []

    def stored(self) -> list[Call]:
        """Return the stored calls."""
        with self._lock:
            return list(self._stored.values())

    def queued(self) -> list[Call]:
        """Nothing waits: every call is delivered at once."""
        return []

    def forget(self, channel: str, key: str, params: dict[str, Any] | None = None) -> None:
        """Remove a stored call (only if its parameters are ``params``, when given)."""
        with self._lock:
            call = self._stored.get((channel, key))
            if call is not None and (params is None or call.params == params):
                del self._stored[(channel, key)]

    def close(self) -> None:
        """Nothing to release."""

    def abandon(self) -> None:
        """Keep a copy of the stored calls in a forked child, with a new lock."""
        self._lock = threading.Lock()


# How a transport is made, once the broadcaster knows which one it needs.
TransportFactory = Callable[["Broadcaster"], Transport]

_ARBITER_FILE = os.path.join("gunicorn", "arbiter.py")


def process_role(environ: dict[str, str] | None = None) -> tuple[Literal["worker", "master", "plain"], int]:
    """Tell a gunicorn worker from a gunicorn master and from any other process.

    gunicorn's master puts ``SERVER_SOFTWARE=gunicorn/<version>`` in its environment, and its
    workers inherit it. Among those processes, the master is the one that loads the app before
    forking (``preload_app``): it runs the include from gunicorn's arbiter but not from the
    arbiter's ``spawn_worker``. Return ``("worker", master pid)``, ``("master", own pid)`` or
    ``("plain", own pid)``.
    """
    environ = dict(os.environ) if environ is None else environ
    if not environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return "plain", os.getpid()
    arbiter_functions: set[str] = set()
    frame: FrameType | None = sys._getframe()  # the only way to see who is loading the app
    while frame is not None:
        if frame.f_code.co_filename.endswith(_ARBITER_FILE):
            arbiter_functions.add(frame.f_code.co_name)
        frame = frame.f_back
    if arbiter_functions and "spawn_worker" not in arbiter_functions:
        return "master", os.getpid()
    return "worker", os.getppid()


def process_start_time(pid: int, proc: Path = Path("/proc")) -> str | None:
    """Return the start time of a process (clock ticks since boot), or None if it is not running."""
    try:
        stat = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


_LIVE: "weakref.WeakSet[Broadcaster]" = weakref.WeakSet()
_FORK_HOOK_REGISTERED = False


def _after_fork_in_child() -> None:
    for broadcaster in list(_LIVE):
        broadcaster.after_fork_in_child()


def _register_fork_hook() -> None:
    global _FORK_HOOK_REGISTERED  # noqa: PLW0603 (one hook per interpreter, for every broadcaster)
    if not _FORK_HOOK_REGISTERED:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _FORK_HOOK_REGISTERED = True


class Broadcaster:
    """The callbacks of one process and the transport that reaches the others.

    Until :meth:`start` is called, it broadcasts in this process only (with the stored calls kept
    in memory).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # subscriptions, transport swaps, restarts
        self._apply_lock = threading.RLock()  # callbacks run one at a time, in order
        self._subscriptions: dict[str, Callback] = {}
        self._applied: dict[tuple[str, str], str] = {}  # (channel, key) -> id of the stored call applied
        self._transport: Transport = InProcessTransport()
        self._factory: TransportFactory | None = None
        self._started_with: Any = None
        self._deferred = False  # a gunicorn master: the workers it forks start the transport
        self._pid = os.getpid()
        self.instance_id = uuid.uuid4().hex
        self.warn = RateLimitedWarning(logger=LOG)
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()

    # Set-up.

    def start(self, key: Any, factory: TransportFactory, *, defer: bool = False) -> None:
        """Switch to the transport ``factory`` makes, unless already started with the same ``key``.

        With ``defer`` (a gunicorn master loading the app before forking), calls stay in this
        process and every child forked from it starts the transport for itself.
        """
        with self._lock:
            if self._pid != os.getpid():
                # Made in a parent that never started it (a gunicorn master that imported the app's
                # module to read its logging configuration): no fork hook ran, so this process
                # takes an identity of its own now, or its workers would answer as one.
                self._pid = os.getpid()
                self.instance_id = uuid.uuid4().hex
            if self._started_with == key and self._factory is not None:
                return
            self._close_transport()
            self._factory = factory
            self._started_with = key
            self._deferred = defer
            _LIVE.add(self)
            _register_fork_hook()
            if not defer:
                self._start_transport()

    def _start_transport(self) -> None:
        assert self._factory is not None  # noqa: S101 (start() sets it)
        transport = self._factory(self)
        try:
            transport.start()
        except (OSError, TransportError) as error:
            LOG.warning(
                "broadcast: the %s channel is off, calls reach this process only: %s", transport.name, error
            )
            with contextlib.suppress(Exception):
                transport.close()
            transport = InProcessTransport()
        self._transport = transport
        if self._transport.listener_generation() > 0:
            self._stop = threading.Event()
            self._start_watchdog()

    def _close_transport(self) -> None:
        self._stop.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=WATCHDOG_INTERVAL + 1)
        self._transport.close()
        self._transport = InProcessTransport()

    def reset(self) -> None:
        """Stop the transport and forget every subscription and stored call (for tests)."""
        with self._lock:
            self._close_transport()
            self._factory = None
            self._started_with = None
            self._deferred = False
            with self._apply_lock:
                self._subscriptions.clear()
                self._applied.clear()

    def after_fork_in_child(self) -> None:
        """Run in a child just forked: the parent's threads are gone, its sockets are not ours."""
        self._lock = threading.RLock()
        self._apply_lock = threading.RLock()
        self.warn = RateLimitedWarning(logger=LOG)
        self._pid = os.getpid()
        self.instance_id = uuid.uuid4().hex
        self._watchdog = None
        self._stop = threading.Event()
        self._transport.abandon()
        if self._deferred and self._factory is not None:
            # A worker forked by a gunicorn master that loaded the app: it starts its own transport.
            self._deferred = False
            self._applied.clear()
            try:
                self._start_transport()
            except Exception:  # instrumentation must not kill the worker
                LOG.exception("cannot start the broadcast transport in process %s", self._pid)
                self._transport = InProcessTransport()
        elif not isinstance(self._transport, InProcessTransport):
            # Any other child reaches itself only; the parent stays the member of the group.
            self._transport = InProcessTransport()
            self._factory = None
            self._started_with = None

    # Health.

    @property
    def transport(self) -> Transport:
        """The transport in use."""
        return self._transport

    def check(self) -> None:
        """Restart the listener and the watchdog if they died; cheap, called on each broadcast."""
        if os.getpid() != self._pid:
            self.after_fork_in_child()  # forked without the hook (os.fork always runs it; be safe)
        transport = self._transport
        if not transport.listener_alive():
            with self._lock:
                if transport is self._transport and not transport.listener_alive():
                    self.warn(
                        "the broadcast listener thread of process %s died; restarting it",
                        self._pid,
                        kind="listener-dead",
                    )
                    transport.restart_listener()
        if transport.listener_generation() > 0 and not self._stop.is_set():
            watchdog = self._watchdog
            if watchdog is None or not watchdog.is_alive():
                with self._lock:
                    if self._watchdog is watchdog and not self._stop.is_set():
                        self._start_watchdog()

    def _start_watchdog(self) -> None:
        stop = self._stop

        def watch() -> None:
            while not stop.wait(WATCHDOG_INTERVAL):
                try:
                    self.check()
                except Exception:  # keep watching
                    LOG.exception("the broadcast watchdog failed")

        self._watchdog = threading.Thread(target=watch, name="c2cwsgiutils-broadcast-watchdog", daemon=True)
        self._watchdog.start()

    def status(self) -> dict[str, Any]:
        """Describe the broadcaster of this process: transport, listener, subscriptions."""
        return {
            "pid": os.getpid(),
            "transport": self._transport.name,
            "listener_alive": self._transport.listener_alive(),
            "listener_generation": self._transport.listener_generation(),
            "channels": sorted(self._subscriptions),
        }

    # Subscriptions.

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Call ``callback(**params)`` for each call on ``channel``; apply the stored ones now."""
        with self._apply_lock:
            self._subscriptions[channel] = callback
            for applied in [applied for applied in self._applied if applied[0] == channel]:
                del self._applied[applied]  # a new callback has applied nothing yet
        try:
            calls = self._transport.stored()
        except TransportError as error:
            self.warn("cannot read the stored broadcast calls: %s", error, kind="stored")
            return
        self.catch_up([call for call in calls if call.channel == channel])

    def unsubscribe(self, channel: str) -> None:
        """Stop calling the callback of ``channel`` in this process."""
        with self._apply_lock:
            self._subscriptions.pop(channel, None)

    # Calls.

    def _apply(self, call: Call) -> Reply:
        """Call the callback of ``call.channel`` here, if there is one."""
        with self._apply_lock:
            callback = self._subscriptions.get(call.channel)
            if callback is None:
                return Reply(call.id, self.instance_id, self._pid, "skip")
            if call.key is not None:
                self._applied[(call.channel, call.key)] = call.id
            try:
                answer = callback(**call.params)
            except Exception as error:
                LOG.exception("broadcast callback of %s failed", call.channel)
                return Reply(call.id, self.instance_id, self._pid, "error", error=f"{type(error).__name__}")
        try:
            # The same round trip as the other processes' answers take: a tuple becomes a list.
            answer = orjson.loads(orjson.dumps(answer))
        except TypeError as error:
            LOG.warning("the answer of the broadcast callback of %s is not JSON: %s", call.channel, error)
            return Reply(call.id, self.instance_id, self._pid, "error", error="answer not JSON-serialisable")
        return Reply(call.id, self.instance_id, self._pid, "answer", answer)

    def receive(self, call: Call) -> Reply:
        """Apply a call received by the listener; skip what this process has applied already."""
        with self._apply_lock:
            if call.key is not None:
                # A stored call applied already (by a replay, or here by its own sender) is not
                # applied again; a sender's own call is applied again if another came in between.
                if self._applied.get((call.channel, call.key)) == call.id:
                    return Reply(call.id, self.instance_id, self._pid, "skip")
            elif call.sender == self.instance_id:
                return Reply(call.id, self.instance_id, self._pid, "skip")
            return self._apply(call)

    def catch_up(self, calls: list[Call]) -> None:
        """Apply each stored call this process has not applied yet."""
        with self._apply_lock:
            for call in calls:
                if call.key is None or call.channel not in self._subscriptions:
                    continue
                if self._applied.get((call.channel, call.key)) != call.id:
                    self._apply(call)

    def broadcast(
        self,
        channel: str,
        params: dict[str, Any] | None = None,
        expect_answers: bool = False,
        timeout: float = 10,
        *,
        store: bool = False,
        state_key: str | None = None,
    ) -> list[Any] | None:
        """Call ``channel``'s callback in every process; see :func:`c2cwsgiutils.broadcast.broadcast`."""
        call = Call(
            id=uuid.uuid4().hex,
            channel=channel,
            params=dict(params or {}),
            sender=self.instance_id,
            key=(state_key or "") if store else None,
            ttl=float(timeout) if expect_answers else 0.0,
            time=time.time(),
        )
        call.encode()  # a parameter that is not JSON-serialisable is the caller's bug: TypeError
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):  # a failed check costs a warning, never the call
            self.check()
        here: list[Reply] = []

        def apply_here() -> None:
            if not here:
                here.append(self._apply(call))

        replies: list[Reply] = []
        try:
            replies = self._transport.send(call, apply_here, expect_answers, deadline)
        except Exception as error:  # instrumentation never breaks the app
            self.warn("broadcast on %s reached this process only: %s", channel, error, kind="send")
        apply_here()  # if the transport failed before it applied the call here
        if not expect_answers:
            return None
        answers = []
        for reply in here + replies:
            if reply.status == "answer":
                answers.append(reply.answer)
            elif reply.status == "error" and reply.sender != self.instance_id:
                LOG.warning("broadcast on %s: process %s failed: %s", channel, reply.pid, reply.error)
        return answers

    def stored(self, channel: str) -> dict[str, dict[str, Any]]:
        """Return the parameters of the stored calls of ``channel``, by state key.

        Raises :class:`TransportError` when they cannot be read now (Redis away): an empty answer
        would claim there is nothing.
        """
        return _by_key(self._transport.stored(), channel)

    def queued(self, channel: str) -> dict[str, dict[str, Any]]:
        """Return the stored calls of ``channel`` that did not reach the other processes yet, by state key.

        They were sent from this process while Redis was away, and go out when it answers again.
        """
        return _by_key(self._transport.queued(), channel)

    def forget(
        self, channel: str, state_key: str | None = None, params: dict[str, Any] | None = None
    ) -> None:
        """Remove a stored call, so that processes started from now on do not replay it.

        With ``params``, only if the stored call still has these parameters (nobody changed it
        meanwhile).
        """
        try:
            self._transport.forget(channel, state_key or "", params)
        except TransportError as error:
            self.warn("cannot remove the stored broadcast call %s: %s", channel, error, kind="forget")


def _by_key(calls: list[Call], channel: str) -> dict[str, dict[str, Any]]:
    return {call.key: call.params for call in calls if call.key is not None and call.channel == channel}
