"""c2cwsgiutils.acceptance.composition.Composition, the Docker Compose v2 controller.

There is no Docker engine here, so its command lines are checked against a recording stand-in: a
small ``docker`` script that each test puts first on PATH. It records its arguments and answers
what the test scripted (``docker compose ps`` answers can change from one call to the next). One
test runs the real ``docker`` CLI when one is installed.
"""

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from c2cwsgiutils.acceptance.composition import Composition, CompositionError
from c2cwsgiutils.acceptance.utils import wait_until
from tests.docker_standin import Docker, container, ps

FILE = ["compose", "--file", "docker-compose.yaml"]


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Docker:
    return Docker(tmp_path, monkeypatch)


def project(**kwargs: Any) -> Composition:
    """A Composition of docker-compose.yaml (the stand-in never reads the file)."""
    return Composition("docker-compose.yaml", **kwargs)


def test_start_checks_the_cli_builds_brings_up_and_waits(docker: Docker) -> None:
    project().start()
    assert docker.calls() == [
        [*FILE, "version", "--short"],
        [*FILE, "build"],
        [*FILE, "up", "--detach", "--remove-orphans"],
        [*FILE, "ps", "--all", "--format", "json"],
    ]


def test_project_name_is_passed_and_build_can_be_skipped(docker: Docker) -> None:
    project(project_name="p1", build=False).start()
    assert [call[3:] for call in docker.calls()][:3] == [
        ["--project-name", "p1", "version", "--short"],
        ["--project-name", "p1", "up", "--detach", "--remove-orphans"],
        ["--project-name", "p1", "ps", "--all", "--format", "json"],
    ]


def test_start_waits_until_every_container_is_healthy(docker: Docker) -> None:
    docker.script(
        ps=[
            ps(container("app", health="starting"), container("db", health="healthy")),
            ps(
                container("app", health="healthy"),
                container("db", health="healthy"),
                container("init", "exited"),
            ),
        ]
    )
    project().start()
    assert [call[3] for call in docker.calls()].count("ps") == 2


def test_an_older_compose_answering_one_json_array_is_understood(docker: Docker) -> None:
    docker.script(ps={"stdout": json.dumps([container("app", health="healthy")])})
    project(start_timeout=0).start()


def test_a_service_that_does_not_become_healthy_is_named_with_its_last_logs(docker: Docker) -> None:
    docker.script(
        ps=ps(container("app", health="starting"), container("db", health="healthy")),
        logs={"stdout": "app-1  | still loading\n"},
    )
    with pytest.raises(CompositionError) as raised:
        project(start_timeout=0).start()
    assert str(raised.value) == (
        "services not healthy after 0s: app (starting)\nlast log lines:\napp-1  | still loading"
    )
    assert docker.calls()[-1] == [*FILE, "logs", "--no-color", "--tail", "20", "app"]


def test_an_unhealthy_or_failed_service_fails_at_once(docker: Docker) -> None:
    docker.script(
        ps=ps(container("app", health="unhealthy"), container("db", "exited", exit_code=3)),
        logs={"stdout": ""},
    )
    with pytest.raises(CompositionError) as raised:
        project(start_timeout=600).start()
    assert str(raised.value) == "services failed: app (unhealthy), db (exited with 3)"


def test_a_failing_command_says_which_with_its_error_output(docker: Docker) -> None:
    docker.script(build={"code": 17, "stderr": "failed to solve: no such file\n"})
    with pytest.raises(CompositionError) as raised:
        project().start()
    assert str(raised.value) == "docker compose build: exit 17\nfailed to solve: no such file"


def test_a_command_that_hangs_times_out(docker: Docker) -> None:
    docker.script(up={"sleep": 30})
    with pytest.raises(CompositionError) as raised:
        project(command_timeout=0.5, build=False).start()
    assert str(raised.value) == "docker compose up --detach --remove-orphans: no end after 0.5s"


def test_missing_docker_cli_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompositionError) as raised:
        project().start()
    assert str(raised.value) == (
        "'docker' was not found on PATH: install the Docker CLI and its Compose v2 plugin"
    )


def test_missing_compose_plugin_is_a_clear_error(docker: Docker) -> None:
    docker.script(version={"code": 1, "stderr": "docker: unknown command: docker compose\n"})
    with pytest.raises(CompositionError) as raised:
        project().start()
    assert str(raised.value) == (
        "'docker compose' is not available (docker: unknown command: docker compose): "
        "install the Docker Compose v2 plugin"
    )
    assert len(docker.calls()) == 1


def test_the_real_docker_cli_where_installed() -> None:
    """The installed ``docker``: its Compose version, or the error that names the missing piece."""
    real = project()
    if shutil.which("docker") is None:
        with pytest.raises(CompositionError, match="'docker' was not found on PATH"):
            real.check_cli()
        return
    works = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False, timeout=60)
    if works.returncode == 0:
        assert real.check_cli()[0].isdigit()
    else:
        with pytest.raises(CompositionError, match=r"^'docker compose' is not available \(.+\): install"):
            real.check_cli()


def test_base_url_is_the_published_port_of_the_app(docker: Docker) -> None:
    docker.script(port={"stdout": "0.0.0.0:49153\n"})
    assert project().base_url == "http://127.0.0.1:49153"
    assert project(app_service="web", app_port=80).url("/c2c/") == "http://127.0.0.1:49153/c2c/"
    assert docker.calls()[-1] == [*FILE, "port", "web", "80"]


def test_an_unpublished_app_port_is_a_clear_error(docker: Docker) -> None:
    docker.script(port={"stdout": ""})
    with pytest.raises(CompositionError) as raised:
        _ = project().base_url
    assert str(raised.value) == "service 'app' publishes no host port for 8080"


def test_stop_restart_run_exec_and_logs_command_lines(docker: Docker) -> None:
    docker.script(run={"stdout": "ran\n", "code": 2}, exec={"stdout": "42\n"}, logs={"stdout": "app | hi\n"})
    compose = project()
    compose.stop("db")
    compose.stop()
    compose.restart("app")
    assert compose.run("app", "alembic", "upgrade", "head", env={"A": "1"}).returncode == 2
    assert compose.exec("app", "id", "-u").stdout == "42\n"
    assert compose.logs("app") == "app | hi\n"
    assert compose.logs() == "app | hi\n"
    assert [call[3:] for call in docker.calls()] == [
        ["stop", "db"],
        ["stop"],
        ["restart", "app"],
        ["ps", "--all", "--format", "json"],
        ["run", "--rm", "--no-TTY", "--env", "A=1", "app", "alembic", "upgrade", "head"],
        ["exec", "--no-TTY", "app", "id", "-u"],
        ["logs", "--no-color", "app"],
        ["logs", "--no-color"],
    ]


def test_close_takes_everything_down_unless_kept(docker: Docker) -> None:
    with project():
        pass
    assert docker.calls()[-1] == [*FILE, "down", "--volumes", "--remove-orphans", "--timeout", "10"]
    with project(keep=True):
        pass
    assert docker.calls()[-1][3] == "ps"


def test_a_failed_start_in_a_with_block_takes_everything_down(docker: Docker) -> None:
    docker.script(ps=ps(container("app", health="unhealthy")), logs={"stdout": ""})
    with pytest.raises(CompositionError), project():
        pass
    assert docker.calls()[-1][3] == "down"


# The original's constructor: Composition(request, project_name, composition, coverage_paths).

LEGACY = ["compose", "--file", "docker-compose.yaml", "--project-name", "legacy"]


class Finalizers:
    """What the original constructor uses of pytest's ``request``: finalizers, run here on demand."""

    def __init__(self) -> None:
        self.finalizers: list[Callable[[], object]] = []

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        self.finalizers.append(finalizer)

    def finish(self) -> None:
        while self.finalizers:
            self.finalizers.pop()()  # last in, first out, as pytest


def started_the_originals_way(docker: Docker, *args: Any, **kwargs: Any) -> tuple[Composition, Finalizers]:
    """Make a Composition the original's way; wait until its log follower has started."""
    request = Finalizers()
    composition = Composition(request, "legacy", "docker-compose.yaml", *args, **kwargs)
    wait_until(lambda: [*LEGACY, "logs", "--follow", "--no-color"] in docker.calls(), 10, "the log follower")
    return composition, request


def test_the_originals_constructor_starts_the_project_with_compose_v2(docker: Docker) -> None:
    composition, request = started_the_originals_way(docker)
    assert composition.compose_file == Path("docker-compose.yaml")
    assert composition.project_name == "legacy"
    assert docker.calls() == [
        [*LEGACY, "version", "--short"],
        [*LEGACY, "stop"],
        [*LEGACY, "rm", "--force"],
        [*LEGACY, "build"],
        [*LEGACY, "up", "--detach"],
        [*LEGACY, "logs", "--follow", "--no-color"],
    ]
    request.finish()


def test_the_originals_constructor_stops_everything_at_the_end(docker: Docker) -> None:
    _, request = started_the_originals_way(docker)
    calls = len(docker.calls())
    request.finish()
    assert docker.calls()[calls:] == [[*LEGACY, "stop"]]


def test_the_originals_coverage_paths_are_copied_after_the_stop(docker: Docker, tmp_path: Path) -> None:
    composition, request = started_the_originals_way(docker, ["legacy-api-1:/tmp/coverage"])
    composition.reports_dir = str(tmp_path / "reports")
    calls = len(docker.calls())
    request.finish()
    assert docker.calls()[calls:] == [
        [*LEGACY, "stop"],
        ["cp", "legacy-api-1:/tmp/coverage", str(tmp_path / "reports")],
    ]
    assert (tmp_path / "reports").is_dir()


def test_the_originals_docker_start_and_docker_stop_switches(
    docker: Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("docker_start", "0")
    monkeypatch.setenv("docker_stop", "0")
    _, request = started_the_originals_way(docker)
    request.finish()
    assert docker.calls() == [[*LEGACY, "logs", "--follow", "--no-color"]]


def test_the_originals_docker_tag_defaults_to_latest(docker: Docker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_TAG", raising=False)
    _, request = started_the_originals_way(docker)
    request.finish()
    assert {env["DOCKER_TAG"] for env in docker.environments()} == {"latest"}
    monkeypatch.setenv("DOCKER_TAG", "1.2")
    _, request = started_the_originals_way(docker)
    request.finish()
    assert docker.environments()[-1] == {"DOCKER_TAG": "1.2"}
    project(project_name="new").stop()
    assert docker.environments()[-1] == {"DOCKER_TAG": "1.2"}


def test_the_originals_run_and_exec_raise_on_failure(docker: Docker) -> None:
    docker.script(run={"code": 3}, exec={"code": 4})
    composition, request = started_the_originals_way(docker)
    with pytest.raises(subprocess.CalledProcessError) as raised:
        composition.run("api", "alembic", "upgrade", "head")
    assert raised.value.returncode == 3
    with pytest.raises(subprocess.CalledProcessError):
        composition.exec("api", "true")
    assert docker.calls()[-2:] == [
        [*LEGACY, "run", "--rm", "--no-TTY", "api", "alembic", "upgrade", "head"],
        [*LEGACY, "exec", "--no-TTY", "api", "true"],
    ]
    request.finish()
    assert project().run("app", "false").returncode == 3  # the new constructor's return the result


def test_the_originals_stop_and_restart_name_the_service(docker: Docker) -> None:
    composition, request = started_the_originals_way(docker)
    composition.stop("app")
    composition.restart("app")
    assert docker.calls()[-3:] == [
        [*LEGACY, "stop", "app"],
        [*LEGACY, "restart", "app"],
        [*LEGACY, "ps", "--all", "--format", "json"],
    ]
    request.finish()


def test_a_request_without_a_compose_file_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="the compose file is missing"):
        Composition(Finalizers())  # type: ignore[call-overload]
