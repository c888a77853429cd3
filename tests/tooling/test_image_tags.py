"""scripts/image_tags.py: which image tags a build publishes."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "image_tags.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_tags", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


image_tags = load()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert image_tags.main(list(argv)) == 0
    return capsys.readouterr().out.split()


def test_main_branch_publishes_latest(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--branch", "main") == ["latest"]


def test_version_tag_publishes_full_minor_and_major(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--tag", "6.1.3") == ["6.1.3", "6.1", "6"]


def test_tag_wins_over_branch(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--branch", "6.1.3", "--tag", "6.1.3") == ["6.1.3", "6.1", "6"]


def test_release_branch_publishes_its_major(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--branch", "release_6") == ["6"]


@pytest.mark.parametrize("branch", ["feature/image", "release_6_fix", "release_", "release_06", "mainline"])
def test_other_branches_publish_nothing(capsys: pytest.CaptureFixture[str], branch: str) -> None:
    assert run(capsys, "--branch", branch) == []


@pytest.mark.parametrize("tag", ["6.1", "v6.1.3", "6.1.3rc1", "06.1.3", "6.1.3.4", "latest"])
def test_other_tags_publish_nothing(capsys: pytest.CaptureFixture[str], tag: str) -> None:
    assert run(capsys, "--tag", tag) == []


def test_zero_versions_are_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--tag", "0.10.0") == ["0.10.0", "0.10", "0"]


def test_image_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--branch", "release_7", "--image", "camptocamp/c2cwsgiutils") == [
        "camptocamp/c2cwsgiutils:7"
    ]


def test_no_branch_nor_tag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        image_tags.main([])
    assert exit_info.value.code == 2
    assert "give --branch or --tag" in capsys.readouterr().err
