"""Run an app under the real ``c2cwsgiutils_run`` (gunicorn) on a free loopback port."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import requests

from c2cwsgiutils.acceptance.utils import BackgroundService
from c2cwsgiutils.server import worker_readiness


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# What a server under test inherits from the test's environment: enough to run, nothing that
# could change a result (an exported C2C_BASE_PATH or DEVELOPMENT, say).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")


def clean_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a minimal environment (:data:`INHERITED` from this process) plus ``env``."""
    return {**{name: os.environ[name] for name in INHERITED if name in os.environ}, **(env or {})}


def console_script(name: str) -> str:
    """Return the path of a console script installed beside the running Python."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: not installed; run 'pip install c2cwsgiutils' in this environment")
    return str(path)


class AppServer(BackgroundService):
    """A gunicorn master started with ``c2cwsgiutils_run``, its log kept in a file.

    It runs in a clean environment (:func:`clean_environ`) plus ``env``, so that what the test
    runner happens to export cannot change a result.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config_file: str | Path,
        env: Mapping[str, str] | None = None,
        workers: int = 2,
        ready_path: str = "/c2c/",
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._workdir = tempfile.TemporaryDirectory(prefix="c2cwsgiutils-server-")
        self.pid_file = Path(self._workdir.name) / "gunicorn.pid"
        self.log_file = Path(self._workdir.name) / "server.log"
        self.ready_path = ready_path
        self.args = args
        self.env = clean_environ(
            {
                "C2CWSGIUTILS_CONFIG": str(config_file),
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "GUNICORN_WORKERS": str(workers),
                "C2CWSGIUTILS_PID_FILE": str(self.pid_file),
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        """Return the URL of a path on this server."""
        return self.base_url + path

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server and wait until ``ready_path`` answers."""
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [console_script("c2cwsgiutils_run"), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log()
                self.close()
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{output}")
            try:
                if requests.get(self.url(self.ready_path), timeout=2).status_code < 500:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                pass  # the socket is bound before the workers have loaded the app
            time.sleep(0.1)
        output = self.log()
        self.close()
        raise TimeoutError(f"server not ready after {timeout}s:\n{output}")

    def log(self) -> str:
        """Return everything the server has printed so far."""
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def master_pid(self) -> int:
        """Return the gunicorn master's pid, from its pid file."""
        return int(self.pid_file.read_text(encoding="ascii").strip())

    def worker_pids(self) -> set[int]:
        """Return the pids of the master's live child processes."""
        return worker_readiness.workers(self.master_pid())

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server gracefully (SIGTERM), killing it after ``timeout``; return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        self._workdir.cleanup()
