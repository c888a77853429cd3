"""Run the app under test, and what it needs, from a test session: one interface, four ways.

- :class:`Composition`: a Docker Compose v2 project (the ``docker compose`` CLI).
- :class:`ProcessComposition`: the app under ``c2cwsgiutils_run`` on a free port, no container.
- :class:`ImageComposition`: the built image run with buildah, where no Docker engine exists.
- :class:`ExternalComposition`: an app someone else started; only its URL is known.

Each has ``start``, ``stop``, ``restart``, ``run``, ``exec``, ``logs``, ``base_url``/``url`` and
``close``, so the same acceptance tests run against any of them.
"""

import json
import os
import subprocess
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, cast, overload

from c2cwsgiutils.acceptance.container_image import ImageServer, run_in_image
from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.utils import BackgroundService, wait_url

APP = "app"
"""The name of the app's service in the compositions that hold only the app."""
REPORTS_DIR = "/reports/"
"""Where :meth:`Composition.stop_all` copies the coverage files by default, as the original did."""


class CompositionError(RuntimeError):
    """The composition could not do what was asked; the message says why."""


class LogsUnavailableError(CompositionError):
    """The app's logs cannot be read from here (an app started outside the test session).

    The pytest plugin reports a test that needs them as skipped, with this message.
    """


class BaseComposition(BackgroundService):
    """What every composition offers to the tests."""

    kind = ""

    @property
    @abstractmethod
    def base_url(self) -> str:
        """The app's URL, without a trailing slash."""

    def url(self, path: str) -> str:
        """Return the URL of a path on the app."""
        return self.base_url + path

    @abstractmethod
    def start(self) -> Self:
        """Start everything and wait until it is ready."""

    @abstractmethod
    def stop(self, service: str | None = None) -> None:
        """Stop one service, or everything; :meth:`start` or :meth:`restart` brings it back."""

    @abstractmethod
    def restart(self, service: str | None = None) -> None:
        """Restart one service, or everything, and wait until it is ready again."""

    @abstractmethod
    def run(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-off command in a new container of the service (``docker compose run``)."""

    @abstractmethod
    def exec(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command beside the running service (``docker compose exec``)."""

    @abstractmethod
    def logs(self, service: str | None = None) -> str:
        """Return what the service (or every service) has printed so far."""

    @abstractmethod
    def close(self) -> None:
        """Stop and remove everything (unless told to keep it)."""


def _only_app(kind: str, service: str | None) -> None:
    if service not in (None, APP):
        raise CompositionError(f"the {kind} composition has only the service {APP!r}, not {service!r}")


class _ServerComposition(BaseComposition):
    """A composition of the app alone, run by ``self.server`` (an AppServer or an ImageServer)."""

    server: AppServer | ImageServer
    start_timeout: float
    command_timeout: float

    @property
    def base_url(self) -> str:
        """Return the app's URL, without a trailing slash."""
        return self.server.base_url

    def start(self) -> Self:
        """Start everything and wait until it is ready."""
        self.server.start(timeout=self.start_timeout)
        return self

    def stop(self, service: str | None = None) -> None:
        """Stop one service, or everything."""
        _only_app(self.kind, service)
        self.server.stop()

    def restart(self, service: str | None = None) -> None:
        """Restart one service, or everything, and wait until it is ready again."""
        _only_app(self.kind, service)
        self.server.stop()
        self.server.start(timeout=self.start_timeout)  # the same port, the same log

    def logs(self, service: str | None = None) -> str:
        """Return what the service (or every service) has printed so far."""
        _only_app(self.kind, service)
        return self.server.log()

    def close(self) -> None:
        """Stop and remove everything."""
        self.server.close()


class ProcessComposition(_ServerComposition):
    """The app under the real ``c2cwsgiutils_run`` (gunicorn) on a free loopback port.

    ``run`` and ``exec`` run a local command with the app's environment.
    """

    kind = "process"
    server: AppServer

    def __init__(
        self,
        config_file: str | Path,
        env: Mapping[str, str] | None = None,
        *,
        workers: int = 2,
        start_timeout: float = 60.0,
        command_timeout: float = 300.0,
    ) -> None:
        self.server = AppServer(config_file, env=env, workers=workers)
        self.start_timeout = start_timeout
        self.command_timeout = command_timeout

    def exec(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command beside the service (see :meth:`BaseComposition.exec`)."""
        _only_app(self.kind, service)
        return subprocess.run(
            command,
            env={**self.server.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=self.command_timeout,
            check=False,
        )

    run = exec


class ImageComposition(_ServerComposition):
    """The built image's command in a buildah working container on the host network.

    ``env`` is added to the image's own environment; the server binds a free loopback port.
    """

    kind = "image"
    server: ImageServer

    def __init__(
        self,
        image: str,
        env: Mapping[str, str] | None = None,
        *,
        start_timeout: float = 120.0,
        command_timeout: float = 300.0,
    ) -> None:
        self.server = ImageServer(image)
        self.server.env.update(env or {})
        self.start_timeout = start_timeout
        self.command_timeout = command_timeout

    def run(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-off command (see :meth:`BaseComposition.run`)."""
        _only_app(self.kind, service)
        return run_in_image(
            self.server.image, *command, env={**self.server.env, **(env or {})}, timeout=self.command_timeout
        )

    def exec(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command beside the service (see :meth:`BaseComposition.exec`)."""
        _only_app(self.kind, service)
        return self.server.exec(*command, env=env, timeout=self.command_timeout)


class ExternalComposition(BaseComposition):
    """An app that runs already (``--c2c-app-url``): it is only waited for, never started or stopped."""

    kind = "external"

    def __init__(self, base_url: str, *, ready_path: str = "/", start_timeout: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self.ready_path = ready_path
        self.start_timeout = start_timeout

    @property
    def base_url(self) -> str:
        """Return the app's URL, without a trailing slash."""
        return self._base_url

    def start(self) -> Self:
        """Wait until the app answers (any status below 500)."""
        wait_url(self.url(self.ready_path), timeout=self.start_timeout, expected_status=range(100, 500))
        return self

    def _outside(self, what: str) -> CompositionError:
        return CompositionError(
            f"cannot {what} the app at {self._base_url}: it was started outside the tests"
        )

    def stop(self, service: str | None = None) -> None:
        """Refuse: the app is not this session's to stop."""
        raise self._outside("stop")

    def restart(self, service: str | None = None) -> None:
        """Refuse: the app is not this session's to restart."""
        raise self._outside("restart")

    def run(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Refuse: nothing runs beside an app started elsewhere."""
        raise self._outside("run a command beside")

    def exec(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Refuse: nothing runs beside an app started elsewhere."""
        raise self._outside("run a command beside")

    def logs(self, service: str | None = None) -> str:
        """Raise :class:`LogsUnavailableError`: the logs are where the app runs."""
        raise LogsUnavailableError(
            f"the logs of the app at {self._base_url} are not reachable from the tests"
        )

    def close(self) -> None:
        """Leave the app running: it is not this session's."""


class Finalizers(Protocol):
    """What the original constructor needs of pytest's ``request`` fixture."""

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        """Call ``finalizer`` at the end of the fixture's scope."""


class Composition(BaseComposition):
    """A Docker Compose v2 project, driven through the ``docker compose`` CLI.

    :meth:`start` checks the CLI, builds, brings everything up and waits until every container
    is running and, where it has a health check, healthy (containers that exited with 0, such as
    one-off initialisations, are fine). :meth:`close` runs ``down --volumes`` unless ``keep``.
    The app is ``app_service``, reached through the host port published for ``app_port``.

    The original's constructor, ``Composition(request, project_name, composition,
    coverage_paths=None)``, also works, on Compose v2: it starts the project at once (unless
    ``docker_start=0``: stop, remove, build, ``up --detach``), follows its logs on the test's
    output, and asks ``request`` to :meth:`stop_all` at the end (unless ``docker_stop=0``). Its
    ``run`` and ``exec`` raise :class:`subprocess.CalledProcessError` on failure, as the original's.
    """

    kind = "compose"

    @overload
    def __init__(
        self,
        compose_file: str | Path,
        *,
        project_name: str | None = None,
        app_service: str = APP,
        app_port: int = 8080,
        env: Mapping[str, str] | None = None,
        build: bool = True,
        keep: bool = False,
        start_timeout: float = 300.0,
        command_timeout: float = 600.0,
        docker: str = "docker",
    ) -> None: ...

    @overload
    def __init__(
        self,
        compose_file: Finalizers,
        project_name: str,
        composition: str | Path,
        coverage_paths: Sequence[str] | None = None,
    ) -> None: ...

    def __init__(
        self,
        compose_file: "str | Path | Finalizers",
        project_name: str | None = None,
        composition: str | Path | None = None,
        coverage_paths: Sequence[str] | None = None,
        *,
        app_service: str = APP,
        app_port: int = 8080,
        env: Mapping[str, str] | None = None,
        build: bool = True,
        keep: bool = False,
        start_timeout: float = 300.0,
        command_timeout: float = 600.0,
        docker: str = "docker",
    ) -> None:
        legacy = composition is not None
        if composition is None:
            if not isinstance(compose_file, str | os.PathLike):
                raise TypeError(
                    "Composition(request, project_name, composition): the compose file is missing"
                )
            composition = compose_file
        self.compose_file = Path(composition)
        self.project_name = project_name
        self.app_service = app_service
        self.app_port = app_port
        self.env = dict(env or {})
        self.build = build
        self.keep = keep
        self.start_timeout = start_timeout
        self.command_timeout = command_timeout
        self.docker = docker
        self.coverage_paths = list(coverage_paths or ())
        self.reports_dir = REPORTS_DIR
        self._base_url: str | None = None
        # The original's compose files name their images with ${DOCKER_TAG}, which it defaulted.
        self._env_defaults = {"DOCKER_TAG": "latest"} if legacy else {}
        self._check_commands = legacy
        if legacy:
            self._start_as_the_original(cast(Finalizers, compose_file))

    def _start_as_the_original(self, request: Finalizers) -> None:
        """Start as the original constructor did, with its ``docker_start``/``docker_stop`` switches."""
        if os.environ.get("docker_start", "1") == "1":  # noqa: SIM112 (the original's name)
            self.check_cli()
            # What an earlier run left: stopped, then removed, as the original did.
            self.compose("stop", check=False)
            self.compose("rm", "--force", check=False)
            self.compose("build")  # a failed build fails here, not later against an old image
            self.compose("up", "--detach")
        # The containers' logs go to the test's output, as the original's did.
        watcher = subprocess.Popen(
            self.command("logs", "--follow", "--no-color"),
            env=self._environ(),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

        def stop_watching() -> None:
            watcher.kill()
            watcher.wait()

        request.addfinalizer(stop_watching)
        if os.environ.get("docker_stop", "1") == "1":  # noqa: SIM112 (the original's name)
            request.addfinalizer(self.stop_all)

    def stop_all(self) -> None:
        """Stop every service, then copy the ``coverage_paths`` (``container:path``) to ``reports_dir``.

        The original's end of a session: the containers stay, stopped, for a look at them.
        """
        self.compose("stop")
        if self.coverage_paths:
            os.makedirs(self.reports_dir, exist_ok=True)
            for path in self.coverage_paths:
                self._run([self.docker, "cp", path, self.reports_dir], f"docker cp {path} {self.reports_dir}")

    def _environ(self) -> dict[str, str]:
        return {**self._env_defaults, **os.environ, **self.env}

    def command(self, *args: str) -> list[str]:
        """Return the command line of ``docker compose ARGS`` for this project."""
        project = ["--project-name", self.project_name] if self.project_name else []
        return [self.docker, "compose", "--file", str(self.compose_file), *project, *args]

    def compose(
        self, *args: str, timeout: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose ARGS``; with ``check``, a failure raises :class:`CompositionError`."""
        return self._run(self.command(*args), f"docker compose {' '.join(args)}", timeout, check)

    def _run(
        self, command: list[str], what: str, timeout: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        timeout = self.command_timeout if timeout is None else timeout
        try:
            result = subprocess.run(
                command,
                env=self._environ(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise CompositionError(
                f"{self.docker!r} was not found on PATH: install the Docker CLI and its Compose v2 plugin"
            ) from None
        except subprocess.TimeoutExpired:
            raise CompositionError(f"{what}: no end after {timeout:g}s") from None
        if check and result.returncode != 0:
            raise CompositionError(f"{what}: exit {result.returncode}\n{result.stderr.strip()}")
        return result

    def check_cli(self) -> str:
        """Return the Compose version; raise a clear :class:`CompositionError` if the CLI is missing."""
        result = self.compose("version", "--short", timeout=60, check=False)
        if result.returncode != 0:
            said = (result.stderr.strip() or result.stdout.strip()).splitlines()
            reason = said[0] if said else f"exit {result.returncode}"
            raise CompositionError(
                f"'{self.docker} compose' is not available ({reason}): install the Docker Compose v2 plugin"
            )
        return result.stdout.strip()

    @property
    def base_url(self) -> str:
        """Return the app's URL, without a trailing slash."""
        if self._base_url is None:
            published = self.compose("port", self.app_service, str(self.app_port), timeout=60).stdout.strip()
            if not published:
                raise CompositionError(
                    f"service {self.app_service!r} publishes no host port for {self.app_port}"
                )
            port = published.splitlines()[0].rsplit(":", 1)[1]
            self._base_url = f"http://127.0.0.1:{port}"
        return self._base_url

    def start(self) -> Self:
        """Start everything and wait until it is ready."""
        self.check_cli()
        if self.build:
            self.compose("build")
        self.compose("up", "--detach", "--remove-orphans")
        self.wait_healthy()
        return self

    def containers(self) -> list[dict[str, Any]]:
        """Return ``docker compose ps --all`` as dicts (Service, State, Health, ExitCode...)."""
        output = self.compose("ps", "--all", "--format", "json", timeout=60).stdout.strip()
        if not output:
            return []
        if output.startswith("["):  # Compose before 2.21 printed one array
            containers: list[dict[str, Any]] = json.loads(output)
            return containers
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def wait_healthy(self, services: Sequence[str] = (), timeout: float | None = None) -> None:
        """Wait until the containers (of ``services``, or all) are running and healthy.

        Raise :class:`CompositionError` as soon as one is unhealthy or exited with an error, or
        after ``timeout``, naming the services and what they were doing, with their last log lines.
        """
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            containers = [c for c in self.containers() if not services or c.get("Service") in services]
            failed = {_describe(c) for c in containers if _failed(c)}
            if failed:
                self._fail(f"services failed: {', '.join(sorted(failed))}", containers, failed)
            waiting = {_describe(c) for c in containers if not _ready(c)}
            if containers and not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(sorted(waiting)) or "no container"
                self._fail(f"services not healthy after {timeout:g}s: {names}", containers, waiting)
            time.sleep(1)

    def _fail(self, message: str, containers: list[dict[str, Any]], described: set[str]) -> None:
        names = sorted({str(c.get("Service")) for c in containers if _describe(c) in described})
        logs = self.compose("logs", "--no-color", "--tail", "20", *names, timeout=60, check=False).stdout
        raise CompositionError(f"{message}\nlast log lines:\n{logs.rstrip()}" if logs.strip() else message)

    def stop(self, service: str | None = None) -> None:
        """Stop one service, or everything."""
        self.compose("stop", *([service] if service else []))

    def restart(self, service: str | None = None) -> None:
        """Restart one service, or everything, and wait until it is ready again."""
        self.compose("restart", *([service] if service else []))
        self.wait_healthy([service] if service else [])

    def run(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-off command (see :meth:`BaseComposition.run`)."""
        env_args = [arg for name, value in (env or {}).items() for arg in ("--env", f"{name}={value}")]
        return self._checked(
            self.compose("run", "--rm", "--no-TTY", *env_args, service, *command, check=False)
        )

    def exec(
        self, service: str, *command: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command beside the service (see :meth:`BaseComposition.exec`)."""
        env_args = [arg for name, value in (env or {}).items() for arg in ("--env", f"{name}={value}")]
        return self._checked(self.compose("exec", "--no-TTY", *env_args, service, *command, check=False))

    def _checked(self, result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        """Raise CalledProcessError for a failed command of an instance made the original's way."""
        if self._check_commands:
            result.check_returncode()
        return result

    def logs(self, service: str | None = None) -> str:
        """Return what the service (or every service) has printed so far."""
        return self.compose("logs", "--no-color", *([service] if service else []), timeout=120).stdout

    def close(self) -> None:
        """Remove the containers, networks and volumes; with ``keep``, leave everything running."""
        if not self.keep:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")


def _describe(container: Mapping[str, Any]) -> str:
    state = str(container.get("State", "?"))
    health = str(container.get("Health") or "")
    if state == "exited":
        return f"{container.get('Service')} (exited with {container.get('ExitCode')})"
    return f"{container.get('Service')} ({health or state})"


def _failed(container: Mapping[str, Any]) -> bool:
    if container.get("State") == "exited":
        return int(container.get("ExitCode") or 0) != 0
    return container.get("State") == "dead" or container.get("Health") == "unhealthy"


def _ready(container: Mapping[str, Any]) -> bool:
    if container.get("State") == "exited":
        return int(container.get("ExitCode") or 0) == 0
    return container.get("State") == "running" and container.get("Health") in (None, "", "healthy")
