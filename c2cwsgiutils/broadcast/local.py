"""The local channel: every worker of one gunicorn, through Unix datagram sockets in a directory.

Layout, under the base directory (``C2C_BROADCAST_DIR``, default
``$TMPDIR/c2cwsgiutils-broadcast-<uid>``, mode 0700)::

    <master pid>-<master start time>/     one per gunicorn master (mode 0700)
        <worker pid>-<instance>.sock      each worker's listener socket
        reply-<pid>-<call id>.sock        a sender's socket for the answers of one call, while it waits
        state.json                        the stored calls, replaced atomically (tmp + rename)
        state.lock                        flock'ed while the stored calls are changed and sent

A broadcast is one datagram (a JSON :class:`~.core.Call`) sent to every listener socket of the
directory but the sender's; a socket nobody listens on (``ECONNREFUSED``) belongs to a dead worker
and is removed. The answers come back as JSON :class:`~.core.Reply` datagrams to the reply socket
named in the call, each with the call's id. A stored call is written to ``state.json``, applied
in the sender and sent while ``state.lock`` is held, so that every worker sees the stored calls of
one key in the same order; a worker applies ``state.json`` when its listener starts, after its
socket is bound, so it misses nothing sent meanwhile. The directory of a master that is gone is
removed by the next worker that starts.
"""

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from c2cwsgiutils.broadcast.core import Call, Receiver, Reply, TransportError, process_start_time

MAX_DATAGRAM = 1024 * 1024
"""The largest call or answer the local channel carries (the kernel may allow less: ``wmem_max``)."""
POLL_INTERVAL = 1.0
"""Seconds the listener waits on its socket before checking whether it should stop."""
SEND_TIMEOUT = 1.0
"""Seconds a send to one worker may block when its queue is full."""
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the final NUL
_LISTENER = re.compile(r"[0-9]+-[0-9a-f]+\.sock")
_GROUP = re.compile(r"([0-9]+)-([0-9]+)")
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"


def default_directory() -> Path:
    """Return the default base directory: ``$TMPDIR/c2cwsgiutils-broadcast-<uid>``."""
    return Path(tempfile.gettempdir()) / f"c2cwsgiutils-broadcast-{os.getuid()}"


def group_name(master_pid: int) -> str:
    """Return the directory name of a gunicorn master's workers: its pid and start time."""
    return f"{master_pid}-{process_start_time(master_pid) or 0}"


def private_directory(path: Path, shared_parent: bool = False) -> None:
    """Create ``path`` (mode 0700) if needed, and check that nobody else can write into it.

    Raises TransportError otherwise: a call that another user could send would change this
    process's state. With ``shared_parent``, a directory the user made, readable by others, is
    accepted as long as only its owner can write into it.
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=shared_parent)
    info = path.lstat()
    forbidden = 0o022 if shared_parent else 0o077
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & forbidden:
        raise TransportError(
            f"{path} must be a directory of user {os.getuid()} that no other user can write into"
        )


def remove_stale_groups(base: Path) -> None:
    """Remove the directories of gunicorn masters that are gone (Linux only: it needs ``/proc``)."""
    if process_start_time(os.getpid()) is None:
        return
    with contextlib.suppress(OSError), os.scandir(base) as entries:
        for entry in entries:
            match = _GROUP.fullmatch(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            started = process_start_time(int(match.group(1)))
            if started is None or match.group(2) not in ("0", started):
                shutil.rmtree(entry.path, ignore_errors=True)


class LocalTransport:
    """Unix datagram sockets in one directory per gunicorn master; see the module's docstring."""

    name = "local"

    def __init__(self, receiver: Receiver, base: Path, group: str) -> None:
        self._receiver = receiver
        self.base = base
        self.directory = base / group
        self.path = self.directory / f"{os.getpid()}-{receiver.instance_id[:12]}.sock"
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._restart_lock = threading.Lock()

    # The listener.

    def start(self) -> None:
        """Make the directory, bind this process's socket, apply the stored calls, listen."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise TransportError(f"{self.path}: too long for a Unix socket; set C2C_BROADCAST_DIR shorter")
        private_directory(self.base, shared_parent=True)
        remove_stale_groups(self.base)
        private_directory(self.directory)
        self._listen_anew()

    def _listen_anew(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock.bind(str(self.path))
        sock.settimeout(POLL_INTERVAL)
        self._socket = sock
        # Bound first, then the stored calls: a call sent meanwhile waits in the socket.
        try:
            self._receiver.catch_up(self.stored())
        except TransportError as error:
            self._receiver.warn("cannot read the stored broadcast calls: %s", error, kind="stored")
        self._generation += 1
        self._thread = threading.Thread(
            target=self._listen, args=(sock,), name="c2cwsgiutils-broadcast-listener", daemon=True
        )
        self._thread.start()

    def _listen(self, sock: socket.socket) -> None:
        buffer = bytearray(MAX_DATAGRAM)
        try:
            while not self._stop.is_set():
                try:
                    size = sock.recv_into(buffer)
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        return
                    raise
                if size:
                    self._handle(bytes(buffer[:size]))
        finally:
            # Senders now get ECONNREFUSED and remove the path; a restart binds it again.
            sock.close()

    def _handle(self, data: bytes) -> None:
        try:
            call = Call.decode(data)
        except ValueError as error:
            self._receiver.warn("ignored a broadcast that is not one: %s", error, kind="bad-call")
            return
        reply = self._receiver.receive(call)
        if call.reply_to is None:
            return
        try:
            encoded = reply.encode()
            if len(encoded) > MAX_DATAGRAM:
                encoded = Reply(reply.id, reply.sender, reply.pid, "error", error="answer too big").encode()
            with _sending_socket(SEND_TIMEOUT) as sender:
                sender.sendto(encoded, call.reply_to)
        except OSError as error:
            # The sender gave up waiting (its socket is gone), or the answer is too big.
            if error.errno not in (errno.ENOENT, errno.ECONNREFUSED):
                self._receiver.warn("cannot answer a broadcast on %s: %s", call.channel, error, kind="reply")

    def listener_generation(self) -> int:
        """Return how many listener threads were started."""
        return self._generation

    def listener_alive(self) -> bool:
        """Tell whether the listener thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def restart_listener(self) -> None:
        """Bind the socket again and start a new listener thread, if the current one is dead."""
        with self._restart_lock:
            if self.listener_alive() or self._stop.is_set():
                return
            if self._socket is not None:
                self._socket.close()
            self._listen_anew()

    def close(self) -> None:
        """Stop the listener and remove this process's socket."""
        self._stop.set()
        with contextlib.suppress(OSError), _sending_socket(0.1) as waker:
            waker.sendto(b"", str(self.path))  # wake the listener up now rather than at its next poll
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=POLL_INTERVAL + 1)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def abandon(self) -> None:
        """In a forked child: close the inherited socket, leave the parent's path alone."""
        self._stop.set()
        if self._socket is not None:
            self._socket.close()
        self._thread = None

    # Sending.

    def send(
        self, call: Call, apply_here: Callable[[], None], expect_answers: bool, deadline: float
    ) -> list[Reply]:
        """Send ``call`` to every other worker's socket; gather answers until ``deadline``."""
        reply_path = self.directory / f"reply-{os.getpid()}-{call.id[:16]}.sock"
        reply_socket: socket.socket | None = None
        try:
            if expect_answers:
                reply_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                reply_socket.bind(str(reply_path))
                call = dataclasses.replace(call, reply_to=str(reply_path))
            data = call.encode()
            if len(data) > MAX_DATAGRAM:
                self._receiver.warn(
                    "a broadcast on %s is too big for the local channel", call.channel, kind="too-big"
                )
                apply_here()
                return []
            if call.key is not None:
                with self._state_lock(deadline):
                    self._store(call)
                    apply_here()
                    sent = self._send_to_all(data, deadline)
            else:
                apply_here()
                sent = self._send_to_all(data, deadline)
            if reply_socket is None:
                return []
            return self._gather(reply_socket, call.id, sent, deadline)
        finally:
            if reply_socket is not None:
                reply_socket.close()
                with contextlib.suppress(OSError):
                    reply_path.unlink()

    def _send_to_all(self, data: bytes, deadline: float) -> int:
        """Send ``data`` to every listener socket but this process's; return how many took it."""
        sent = 0
        with _sending_socket(SEND_TIMEOUT) as sender, os.scandir(self.directory) as entries:
            for entry in entries:
                if not _LISTENER.fullmatch(entry.name) or entry.path == str(self.path):
                    continue
                sender.settimeout(max(0.01, min(SEND_TIMEOUT, deadline - time.monotonic())))
                try:
                    sender.sendto(data, entry.path)
                    sent += 1
                except (ConnectionRefusedError, FileNotFoundError):
                    # Nobody listens there: a worker that is gone.
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                except TimeoutError:
                    self._receiver.warn(
                        "the broadcast listener of %s takes no more calls; skipped", entry.name, kind="full"
                    )
        return sent

    def _gather(self, sock: socket.socket, call_id: str, expected: int, deadline: float) -> list[Reply]:
        """Receive one reply per process that took the call, until ``deadline``."""
        replies: list[Reply] = []
        seen: set[str] = set()
        buffer = bytearray(MAX_DATAGRAM)
        while len(seen) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                break
            try:
                reply = Reply.decode(bytes(buffer[:size]))
            except ValueError:
                continue
            if reply.id == call_id and reply.sender not in seen:
                seen.add(reply.sender)
                replies.append(reply)
        if len(seen) < expected:
            self._receiver.warn(
                "broadcast: %s of %s processes answered in time", len(seen), expected, kind="late"
            )
        return replies

    # Stored calls.

    @contextlib.contextmanager
    def _state_lock(self, deadline: float) -> Iterator[None]:
        descriptor = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TransportError("the stored broadcast calls stayed locked") from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def _read_state(self) -> dict[str, Any]:
        try:
            data = (self.directory / STATE_FILE).read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise TransportError(f"cannot read {self.directory / STATE_FILE}: {error}") from None
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            return {}
        return state if isinstance(state, dict) else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        path = self.directory / STATE_FILE
        temporary = self.directory / f".{STATE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            temporary.write_bytes(orjson.dumps(state))
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise TransportError(f"cannot write {path}: {error}") from None

    def _store(self, call: Call) -> None:
        state = self._read_state()
        state[orjson.dumps([call.channel, call.key]).decode()] = orjson.loads(call.stored_form().encode())
        self._write_state(state)

    def stored(self) -> list[Call]:
        """Return the stored calls."""
        calls = []
        for value in self._read_state().values():
            with contextlib.suppress(ValueError, TypeError):
                calls.append(Call.decode(orjson.dumps(value)))
        return calls

    def queued(self) -> list[Call]:
        """Nothing waits: a call is written and sent at once, or reaches this process only."""
        return []

    def forget(self, channel: str, key: str, params: dict[str, Any] | None = None) -> None:
        """Remove a stored call (only if its parameters are ``params``, when given)."""
        field = orjson.dumps([channel, key]).decode()
        with self._state_lock(time.monotonic() + SEND_TIMEOUT):
            state = self._read_state()
            value = state.get(field)
            if value is None:
                return
            if params is not None and (not isinstance(value, dict) or value.get("params") != params):
                return  # changed meanwhile
            del state[field]
            self._write_state(state)


@contextlib.contextmanager
def _sending_socket(timeout: float) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_DATAGRAM)
        sock.settimeout(timeout)
        yield sock
    finally:
        sock.close()
