"""The legacy app's image: built from a Dockerfile written for the original base image, served.

Runs in the image composition (`make acceptance-image`); in the process composition there is no
image, and the tests say so. The container is a buildah working container sharing the host's
process namespace, so the server's pids are host pids.
"""

import json
import re
from pathlib import Path

import pytest

from c2cwsgiutils.acceptance.composition import BaseComposition, ImageComposition
from c2cwsgiutils.acceptance.connection import Connection
from c2cwsgiutils.acceptance.container_image import ImageServer, image_config
from c2cwsgiutils.acceptance.utils import wait_until
from c2cwsgiutils.server import worker_readiness

WWW_DATA = 33


@pytest.fixture
def server(legacy: BaseComposition) -> ImageServer:
    if not isinstance(legacy, ImageComposition):
        pytest.skip("needs the legacy app's image: make acceptance-image")
    return legacy.server


def ids(pid: int, field: str) -> list[int]:
    """Return the ids of a ``/proc/<pid>/status`` line: real, effective, saved, fs."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return [int(value) for value in line.split()[1:]]
    raise AssertionError(f"no {field} line for process {pid}")


def test_image_has_no_user_and_switches_to_www_data(server: ImageServer) -> None:
    config = image_config(server.image)
    assert not config.get("User")
    assert "C2CWSGIUTILS_USER=33:33" in config["Env"]


def test_master_and_workers_serve_as_www_data(server: ImageServer) -> None:
    processes = [server.master_pid(), *server.worker_pids()]
    assert len(processes) == 3
    for pid in processes:
        assert (ids(pid, "Uid"), ids(pid, "Gid")) == ([WWW_DATA] * 4, [WWW_DATA] * 4), pid


def test_pid_file_belongs_to_www_data(server: ImageServer) -> None:
    result = server.exec("sh", "-c", 'stat -c %u "$C2CWSGIUTILS_PID_FILE"')
    assert (result.returncode, result.stdout) == (0, f"{WWW_DATA}\n"), result.stderr


def test_versions_json_is_the_one_genversion_wrote_in_app(
    server: ImageServer, app_connection: Connection
) -> None:
    versions = app_connection.get_json("c2c/versions.json")
    # scripts/image-build.sh passes the commit as GIT_HASH; the Dockerfile's RUN runs in /app.
    assert re.fullmatch(r"[0-9a-f]{40}", versions["main"]["git_hash"]), versions["main"]
    written = server.exec("cat", "/app/versions.json")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout) == versions


def test_reload_by_exec_as_root_replaces_the_workers(server: ImageServer) -> None:
    """``docker exec CONTAINER c2cwsgiutils_reload`` runs as root, the server as www-data."""
    assert server.exec("id", "-u").stdout == "0\n"
    master = server.master_pid()
    before = worker_readiness.workers(master)
    result = server.exec("c2cwsgiutils_reload")
    assert result.returncode == 0, result.stderr

    def replaced() -> set[int]:
        workers = worker_readiness.workers(master)
        return workers if workers and not workers & before else set()

    after = wait_until(replaced, timeout=30, what="the workers replaced")
    assert all(ids(pid, "Uid") == [WWW_DATA] * 4 for pid in after)
