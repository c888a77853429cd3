"""Tell the gunicorn master of a pid file from any other process that has, or once had, its pid.

A pid file names a number, and once its process is gone the number goes to whatever starts next.
So the master also writes, beside its pid file, ``<pid file>.master``: its pid, its start time
(field 22 of ``/proc/<pid>/stat``, in clock ticks since boot) and the kernel's boot id. Those three
name one process for good; a process whose identity differs is not the master, whatever its
command line says. The identity file must belong to the process's own user, so that a file
another user left in a shared ``/tmp`` cannot aim a signal at someone else's process.

``c2cwsgiutils_reload`` signals a pid only if it passes this check; ``c2cwsgiutils_run`` refuses a
pid file that a live master owns and removes one that fails it. The check needs Linux's ``/proc``.
"""

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SUFFIX = ".master"
PROC = Path("/proc")
_PID = re.compile(r"[1-9][0-9]{0,9}")


class PidFileError(Exception):
    """The pid file does not lead to a master; the message says why."""


class NoPidFileError(PidFileError):
    """There is no pid file."""


class UnreadablePidFileError(PidFileError):
    """The pid file exists but cannot be read (permissions, a directory...)."""


class UnverifiableError(PidFileError):
    """No ``/proc`` here to tell one process from another."""


class StalePidFileError(PidFileError):
    """The pid file names no process, or one that is not the master that wrote it."""

    def __init__(self, message: str, content: str) -> None:
        super().__init__(message)
        self.content = content  # what the pid file held when it was judged stale


@dataclasses.dataclass(frozen=True)
class Identity:
    """What names one process for good: pid, start time and boot."""

    pid: int
    start_time: int
    boot_id: str


def identity_file(pid_file: str | Path) -> Path:
    """Return the path of the identity file beside ``pid_file``."""
    return Path(f"{pid_file}{SUFFIX}")


def process_identity(pid: int, proc: Path = PROC) -> Identity:
    """Return the identity of a running process; ProcessLookupError when there is none."""
    try:
        stat = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        if not (proc / "self" / "stat").exists():
            raise UnverifiableError(f"cannot tell processes apart without {proc} (Linux only)") from None
        raise ProcessLookupError(pid) from None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    fields = stat.rpartition(")")[2].split()
    try:
        boot_id = (proc / "sys" / "kernel" / "random" / "boot_id").read_text(encoding="ascii").strip()
    except OSError:
        boot_id = ""
    return Identity(pid=pid, start_time=int(fields[22 - 3]), boot_id=boot_id)


def _write_atomically(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # like gunicorn's pid file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def record(pid_file: str | Path) -> Identity:
    """Write the calling process's identity beside ``pid_file``; the master calls this."""
    identity = process_identity(os.getpid())
    _write_atomically(identity_file(pid_file), json.dumps(dataclasses.asdict(identity)) + "\n")
    return identity


def _recorded_pid(path: Path) -> int | None:
    try:
        data: Any = json.loads(path.read_text(encoding="ascii"))
        pid = data["pid"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return pid if isinstance(pid, int) else None


def forget(pid_file: str | Path) -> None:
    """Remove the identity file beside ``pid_file`` if it is the calling process's own."""
    path = identity_file(pid_file)
    if _recorded_pid(path) == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def _read_identity(path: Path) -> Identity:
    data: Any = json.loads(path.read_text(encoding="ascii"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    identity = Identity(pid=data["pid"], start_time=data["start_time"], boot_id=data["boot_id"])
    if not (
        isinstance(identity.pid, int)
        and isinstance(identity.start_time, int)
        and isinstance(identity.boot_id, str)
    ):
        raise ValueError("pid, start_time and boot_id have the wrong types")
    return identity


def verified_master(pid_file: str | Path, proc: Path = PROC) -> int:
    """Return the pid in ``pid_file`` if it is the running master that wrote it, else raise a PidFileError."""
    try:
        content = Path(pid_file).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise NoPidFileError(f"{pid_file}: no such file; is c2cwsgiutils_run running?") from None
    except OSError as error:
        raise UnreadablePidFileError(f"{pid_file}: cannot read it: {error.strerror or error}") from None
    if not _PID.fullmatch(content.strip()):
        raise StalePidFileError(f"{pid_file}: holds no pid: {content.strip()[:40]!r}", content)
    pid = int(content)

    def not_the_master(why: str) -> StalePidFileError:
        return StalePidFileError(
            f"{pid_file}: process {pid} is not the gunicorn master started for this pid file "
            f"({why}; stale pid file?)",
            content,
        )

    try:
        actual = process_identity(pid, proc)
        owner = (proc / str(pid)).stat().st_uid
    except (ProcessLookupError, FileNotFoundError):
        raise StalePidFileError(
            f"{pid_file}: process {pid} is not running (stale pid file?)", content
        ) from None
    path = identity_file(pid_file)
    try:
        recorded = _read_identity(path)
        recorded_owner = path.stat().st_uid
    except FileNotFoundError:
        raise not_the_master(f"{path} is missing") from None
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise not_the_master(f"{path} cannot be read: {error}") from None
    if recorded.pid != pid:
        raise not_the_master(f"{path} names pid {recorded.pid}")
    if recorded.boot_id != actual.boot_id:
        raise not_the_master(f"{path} was written before the machine restarted")
    if recorded.start_time != actual.start_time:
        raise not_the_master(f"it started at another time than the process {path} describes")
    if recorded_owner != owner:
        raise not_the_master(f"{path} belongs to another user than the process")
    return pid


def remove_stale(pid_file: str | Path, content: str, proc: Path = PROC) -> None:
    """Remove a pid file judged stale, if it still holds ``content``, and its identity file.

    The identity file stays if it describes a live process: a new master started by gunicorn's
    binary upgrade (``kill -USR2``) records itself before it takes the pid file over.
    """
    path = Path(pid_file)
    with contextlib.suppress(OSError):
        if path.read_text(encoding="ascii", errors="replace") == content:
            path.unlink()
    identity_path = identity_file(pid_file)
    try:
        recorded = _read_identity(identity_path)
        if process_identity(recorded.pid, proc) == recorded:
            return
    except (OSError, ValueError, TypeError, KeyError, PidFileError):
        pass  # unreadable, or its process is gone (ProcessLookupError is an OSError)
    with contextlib.suppress(OSError):
        identity_path.unlink()
