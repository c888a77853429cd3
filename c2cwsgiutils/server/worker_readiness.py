"""Which gunicorn workers have loaded the app, for a reload that never leaves none serving.

gunicorn answers SIGHUP by starting new workers and stopping the old ones at once, before the new
ones have loaded the app: for the app's whole boot time no worker accepts, and requests wait.
``c2cwsgiutils_reload`` rolls instead: one more worker per old one (SIGTTIN), then, once every new
one is ready, one less per old one (SIGTTOU, which stops the oldest first).

"Ready" is told by the workers themselves: gunicorn's ``post_worker_init`` hook, called once the
app is loaded, marks the worker in ``<pid file>.workers/``, a folder the master makes at start;
``child_exit`` removes the mark, ``on_exit`` the folder (the hooks are in
:mod:`c2cwsgiutils.gunicorn_config`). A master without that folder (gunicorn started with another
configuration file) is reloaded with SIGHUP.
"""

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from c2cwsgiutils.config_utils import is_ascii_int

SUFFIX = ".workers"


class RollError(Exception):
    """The rolling reload could not finish; the message says where it stopped."""


def folder(pid_file: str) -> Path:
    """Return the folder of the ready marks of the master of ``pid_file``."""
    return Path(pid_file + SUFFIX)


def prepare(pid_file: str) -> None:
    """Make an empty folder for the ready marks (in the master, at start)."""
    path = folder(pid_file)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)


def mark_ready(pid_file: str, pid: int) -> None:
    """Mark the worker ``pid`` as ready (in the worker, once the app is loaded)."""
    (folder(pid_file) / str(pid)).touch()


def forget(pid_file: str, pid: int | None = None) -> None:
    """Remove the mark of worker ``pid`` (it exited), or with no pid the whole folder."""
    if pid is None:
        shutil.rmtree(folder(pid_file), ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            (folder(pid_file) / str(pid)).unlink()


def ready(pid_file: str) -> set[int]:
    """Return the pids marked ready."""
    return {int(entry.name) for entry in folder(pid_file).iterdir() if is_ascii_int(entry.name)}


def workers(master: int) -> set[int]:
    """Return the pids of the master's child processes (Linux' ``/proc``)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text(encoding="ascii")
    return {int(pid) for pid in children.split()}


def _wait(count: Callable[[], int], target: int, deadline: float, what: str) -> None:
    """Wait until ``count()`` reaches ``target`` (from below or above, as it starts)."""
    rising = count() < target
    while (count() < target) if rising else (count() > target):
        if time.monotonic() > deadline:
            raise RollError(f"gave up waiting for {what}")
        time.sleep(0.05)


def roll(master: int, pid_file: str, timeout: float) -> tuple[set[int], set[int]]:
    """Replace every worker of ``master`` by a new one, the new ones ready before the old ones stop.

    One signal at a time, each waited for (signals of one kind sent in a row may arrive as one).
    Return the old and the new workers' pids. On a timeout, the workers already started stay:
    the master then serves with more workers than configured until its next reload or restart.
    """
    deadline = time.monotonic() + timeout
    old = workers(master)
    if not old:
        raise RollError(f"the master (pid {master}) has no worker to replace")

    def started() -> int:
        return len(workers(master) - old)

    def started_and_ready() -> int:
        return len((workers(master) - old) & ready(pid_file))

    def old_left() -> int:
        return len(workers(master) & old)

    for count in range(1, len(old) + 1):
        os.kill(master, signal.SIGTTIN)
        _wait(started, count, deadline, "the master to start a new worker")
    _wait(started_and_ready, len(old), deadline, "the new workers to load the app")
    for count in range(1, len(old) + 1):
        os.kill(master, signal.SIGTTOU)
        # The master stops the oldest worker; it exits once its requests are answered.
        _wait(old_left, len(old) - count, deadline, "an old worker to stop")
    return old, workers(master) - old
