"""Version information in subprocesses: the installed c2cwsgiutils_genversion.py writes versions.json.

Each command runs in a clean environment (C2C_VERSIONS_PATH only when a test gives it); the last
test serves the file from a real server under c2cwsgiutils_run. The script's main() and the
versions feature, in-process: tests/unit/test_versions.py.
"""

import importlib.metadata
import json
import re
import subprocess
import time
from pathlib import Path

import requests

from c2cwsgiutils.acceptance.server import clean_environ, console_script
from testing.fixtures import RunScript, StartServer


def test_command_writes_the_tag_the_hash_and_the_installed_packages(
    run_script: RunScript, tmp_path: Path
) -> None:
    output = tmp_path / "versions.json"
    result = run_script("c2cwsgiutils_genversion.py", "--output", str(output), "1.2.3", "0123abc")
    assert result.returncode == 0, result.stderr
    content = json.loads(output.read_text(encoding="utf-8"))
    assert content["main"] == {"git_hash": "0123abc", "git_tag": "1.2.3"}
    assert content["packages"]["c2cwsgiutils"] == importlib.metadata.version("c2cwsgiutils")
    assert content["packages"]["pyramid"] == importlib.metadata.version("pyramid")
    assert output.stat().st_mode & 0o777 == 0o644


def test_dashed_alias_with_the_hash_only_has_no_tag(run_script: RunScript, tmp_path: Path) -> None:
    output = tmp_path / "versions.json"
    result = run_script("c2cwsgiutils-genversion", "-o", str(output), "0123abc")
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text(encoding="utf-8"))["main"] == {"git_hash": "0123abc"}


def test_default_output_is_c2c_versions_path(run_script: RunScript, tmp_path: Path) -> None:
    output = tmp_path / "elsewhere.json"
    result = run_script("c2cwsgiutils_genversion.py", "0123abc", env={"C2C_VERSIONS_PATH": str(output)})
    assert result.returncode == 0, result.stderr
    assert output.exists()


def genversion_in(directory: Path, *args: str, env: dict[str, str] | None = None) -> int:
    """Run the installed console script with ``directory`` as its current directory."""
    return subprocess.run(
        [console_script("c2cwsgiutils_genversion.py"), *args],
        cwd=directory,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).returncode


def test_default_output_is_versions_json_in_the_current_directory(tmp_path: Path) -> None:
    """The original's ``c2cwsgiutils_genversion.py [TAG] HASH`` wrote ./versions.json (WORKDIR /app)."""
    assert genversion_in(tmp_path, "1.2.3", "0123abc") == 0
    content = json.loads((tmp_path / "versions.json").read_text(encoding="utf-8"))
    assert content["main"] == {"git_hash": "0123abc", "git_tag": "1.2.3"}
    assert list(tmp_path.iterdir()) == [tmp_path / "versions.json"]


def test_c2c_versions_path_wins_over_the_current_directory(tmp_path: Path) -> None:
    output = tmp_path / "elsewhere.json"
    assert genversion_in(tmp_path, "0123abc", env={"C2C_VERSIONS_PATH": str(output)}) == 0
    assert output.exists()
    assert not (tmp_path / "versions.json").exists()


def test_output_option_wins_over_c2c_versions_path(tmp_path: Path) -> None:
    env = {"C2C_VERSIONS_PATH": str(tmp_path / "elsewhere.json")}
    assert genversion_in(tmp_path, "--output", "mine.json", "0123abc", env=env) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["mine.json"]


def test_without_a_hash_it_is_a_usage_error(run_script: RunScript) -> None:
    result = run_script("c2cwsgiutils_genversion.py")
    assert result.returncode == 2
    assert "GIT_HASH" in result.stderr


def test_served_and_exported_by_the_real_server(
    run_script: RunScript, start_server: StartServer, tmp_path: Path
) -> None:
    path = tmp_path / "versions.json"
    result = run_script("c2cwsgiutils_genversion.py", "-o", str(path), "1.2.3", "0123abc")
    assert result.returncode == 0, result.stderr
    server = start_server(env={"C2C_VERSIONS_PATH": str(path), "C2C_PROMETHEUS": "1"}, workers=2)
    response = requests.get(server.url("/c2c/versions.json"), timeout=10)
    assert response.json() == json.loads(path.read_text(encoding="utf-8"))
    metrics = requests.get(server.url("/c2c/metrics"), timeout=10).text
    assert re.search(r'^c2cwsgiutils_version\{git_hash="0123abc"\} 1\.0$', metrics, re.MULTILINE), metrics
    deadline = time.monotonic() + 10
    while "version: git hash 0123abc, git tag 1.2.3" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
