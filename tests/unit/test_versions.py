"""Version information, in-process: genversion's main() writes versions.json, the versions feature serves it.

The installed command in subprocesses, and a real server: tests/test_versions_subprocess.py.
"""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from c2cwsgiutils import stats, stats_pyramid
from c2cwsgiutils.scripts import genversion
from tests.apps import make_app


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("C2C_VERSIONS_PATH", raising=False)
    stats_pyramid.reset()
    yield
    stats_pyramid.reset()


def written(path: Path, *args: str) -> dict[str, object]:
    assert genversion.main(["--output", str(path), *args]) == 0
    content: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return content


def test_an_empty_tag_counts_as_none(tmp_path: Path) -> None:
    assert written(tmp_path / "v.json", "", "0123abc")["main"] == {"git_hash": "0123abc"}


def test_unwritable_output_is_exit_1_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "missing" / "versions.json"
    assert genversion.main(["-o", str(output), "0123abc"]) == 1
    assert str(output) in capsys.readouterr().err


def test_view_serves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    content = written(path, "1.2.3", "0123abc")
    app = make_app(settings={"c2c.versions_path": str(path)})
    response = app.get("/c2c/versions.json")
    assert response.json == content
    assert response.content_type == "application/json"
    assert "versions" in app.get("/c2c/").json["views"]


def test_no_file_means_no_view(tmp_path: Path) -> None:
    make_app(settings={"c2c.versions_path": str(tmp_path / "none.json")}).get(
        "/c2c/versions.json", status=404
    )


def test_a_broken_file_is_a_warning_not_a_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "versions.json"
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="c2cwsgiutils.versions"):
        app = make_app(settings={"c2c.versions_path": str(path)})
    app.get("/c2c/versions.json", status=404)
    assert "cannot read the versions file" in caplog.text


def test_main_version_is_logged_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "versions.json"
    written(path, "1.2.3", "0123abc")
    with caplog.at_level(logging.INFO, logger="c2cwsgiutils.versions"):
        make_app(settings={"c2c.versions_path": str(path)})
    assert "version: git hash 0123abc, git tag 1.2.3" in caplog.messages


def test_main_version_is_a_gauge_with_the_hash_as_tag(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    written(path, "0123abc")
    make_app(settings={"c2c.versions_path": str(path), "c2c.stats_view": "true"})
    memory = stats.backend(stats.MemoryBackend)
    assert memory is not None
    assert memory.dump()["gauges"]["version{git_hash=0123abc}"][0] == 1
