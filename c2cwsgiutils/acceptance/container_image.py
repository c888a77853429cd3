"""Run an image's command in a buildah working container on the host network, as a test server.

Same interface as :class:`c2cwsgiutils.acceptance.server.AppServer` (``url``, ``log``, ``port``,
``stop``, context manager), for images built by ``scripts/image-build.sh``; the image composition
(:class:`c2cwsgiutils.acceptance.composition.ImageComposition`) runs the app with it. With buildah's chroot
isolation the container shares the host's network and process namespaces: the server listens on
127.0.0.1, and the pids in its pid file are host pids. A second :meth:`exec` runs in the same root
filesystem, so ``c2cwsgiutils_reload`` there finds the pid file the server wrote in its ``/tmp``.

With ``private_network=True`` the container gets a network namespace of its own (``unshare
--net``, loopback only), so it can listen on the image's default port whatever the host runs;
:meth:`request` and :meth:`exec` then enter that namespace.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import requests

from c2cwsgiutils.acceptance.server import free_port
from c2cwsgiutils.acceptance.utils import BackgroundService

BUILDAH_ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
# Run by this Python inside the container's network namespace: one request, its outcome as JSON.
_REQUEST = """
import json, sys, requests
method, url, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    response = requests.request(method, url, json=body, timeout=10)
except requests.RequestException as error:
    print(json.dumps({"status": 0, "text": str(error)}))
else:
    print(json.dumps({"status": response.status_code, "text": response.text}))
"""


def buildah(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a buildah command with this project's storage settings; raise with its output on failure."""
    env = {**os.environ, **{key: os.environ.get(key, value) for key, value in BUILDAH_ENV.items()}}
    result = subprocess.run(
        ["buildah", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
    return result


def image_config(image: str) -> dict[str, Any]:
    """Return the image's configuration (Env, Cmd, User, Healthcheck, Labels, ExposedPorts...)."""
    inspected = json.loads(buildah("inspect", "--type", "image", image).stdout)
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


def run_in_image(
    image: str, *command: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command in a fresh working container of ``image`` (as ``docker run --rm``), then remove it."""
    container = f"c2cwsgiutils-run-{uuid.uuid4().hex[:12]}"
    buildah("from", "--quiet", "--name", container, image, timeout=300)
    try:
        env_args = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
        return subprocess.run(
            ["buildah", "run", "--network", "host", *env_args, container, "--", *command],
            env={**os.environ, **BUILDAH_ENV},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        buildah("rm", container, check=False)


class ImageServer(BackgroundService):
    """The image's command (its ``CMD`` unless ``command`` is given) in a fresh working container.

    ``env`` is added to the image's environment with ``buildah run -e``; by default the server binds
    a free loopback port through ``GUNICORN_BIND``. ``port=8080, env={}`` runs it with nothing but
    the image's defaults (which bind ``:8080``).
    """

    def __init__(
        self,
        image: str,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        ready_path: str = "/c2c/",
        command: tuple[str, ...] | None = None,
        private_network: bool = False,
    ) -> None:
        self.image = image
        self.port = port or free_port()
        self.env = dict(env) if env is not None else {"GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        self.command = command
        self.private_network = private_network
        self.container = f"c2cwsgiutils-test-{uuid.uuid4().hex[:12]}"
        self._workdir = tempfile.TemporaryDirectory(prefix="c2cwsgiutils-image-")
        self.log_file = Path(self._workdir.name) / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._created = False

    def url(self, path: str) -> str:
        """Return the URL of a path on this server."""
        return self.base_url + path

    def start(self, timeout: float = 90.0) -> Self:
        """Create the container, start the command, and wait until ``ready_path`` answers."""
        try:
            return self._start(timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, timeout: float) -> Self:
        command = self.command or tuple(image_config(self.image).get("Cmd") or ())
        if not command:
            raise ValueError(f"{self.image} has no CMD; give a command")
        if not self.private_network:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    raise RuntimeError(f"port {self.port} is already taken on 127.0.0.1")
        if not self._created:  # a restart after stop() runs the command again in the same container
            buildah("from", "--quiet", "--name", self.container, self.image, timeout=300)
            self._created = True
        env_args = [arg for name, value in self.env.items() for arg in ("-e", f"{name}={value}")]
        run = ["buildah", "run", "--network", "host", *env_args, self.container, "--", *command]
        if self.private_network:
            run = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *run]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                run,
                env={**os.environ, **BUILDAH_ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"container command exited with {self.process.returncode}:\n{self.log()}")
            if 0 < self.request("GET", self.ready_path)[0] < 500:
                return self
            time.sleep(0.2)
        raise TimeoutError(f"{self.image} not ready on port {self.port} after {timeout}s:\n{self.log()}")

    def _netns(self) -> list[str]:
        """Return the command prefix that enters the container's network namespace, if private."""
        if not self.private_network or self.process is None:
            return []
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net"]

    def request(self, method: str, path: str, json_body: object = None) -> tuple[int, str]:
        """Make one request to the server; return its status (0 if none came) and text."""
        if not self._netns():
            try:
                response = requests.request(method, self.url(path), json=json_body, timeout=10)
            except (requests.ConnectionError, requests.Timeout) as error:
                return 0, str(error)
            return response.status_code, response.text
        result = subprocess.run(
            [*self._netns(), sys.executable, "-c", _REQUEST, method, self.url(path), json.dumps(json_body)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        outcome = json.loads(result.stdout)
        return int(outcome["status"]), str(outcome["text"])

    def exec(
        self, *command: str, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the same container (as ``docker exec`` would), with the image's user."""
        env_args = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
        run = ["buildah", "run", "--network", "host", *env_args, self.container, "--", *command]
        return subprocess.run(
            [*self._netns(), *run],
            env={**os.environ, **BUILDAH_ENV},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log(self) -> str:
        """Return everything the server has printed so far."""
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def master_pid(self) -> int:
        """Return the gunicorn master's pid (a host pid: the namespaces are shared)."""
        result = self.exec("sh", "-c", 'cat "${C2CWSGIUTILS_PID_FILE:-/tmp/c2cwsgiutils.pid}"')
        if result.returncode != 0:
            raise RuntimeError(f"no pid file in the container: {result.stderr}")
        return int(result.stdout.strip())

    def worker_pids(self) -> set[int]:
        """Return the pids of the master's live child processes."""
        master = self.master_pid()
        children = Path(f"/proc/{master}/task/{master}/children").read_text(encoding="ascii")
        return {int(pid) for pid in children.split()}

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server as ``docker stop`` would: SIGTERM to gunicorn, SIGKILL after ``timeout``.

        ``buildah run`` does not pass SIGTERM on (it kills its child), so the master is signalled
        directly. Return the exit code of ``buildah run``.
        """
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.kill(self.master_pid(), signal.SIGTERM)
            except (RuntimeError, ValueError, ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self) -> None:
        """Stop the server, remove the container and the log."""
        try:
            self.stop()
        finally:
            if self._created:
                buildah("rm", self.container, check=False)
                self._created = False
            self._workdir.cleanup()
