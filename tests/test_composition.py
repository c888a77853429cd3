"""c2cwsgiutils.acceptance.composition.Composition, the Docker Compose v2 controller.

There is no Docker engine here, so its command lines are checked against a recording stand-in: a
small ``docker`` script that each test puts first on PATH. It records its arguments and answers
what the test scripted (``docker compose ps`` answers can change from one call to the next). One
test runs the real ``docker`` CLI when one is installed.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from c2cwsgiutils.acceptance.composition import Composition, CompositionError
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
