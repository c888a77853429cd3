"""bench/results.md: a new run rewrites the table and keeps the hand-written design figures."""

import importlib.util
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).parents[2] / "bench" / "harness.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_harness", HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_run_keeps_the_design_figures(tmp_path: Path) -> None:
    harness = load_harness()
    markdown = tmp_path / "results.md"
    figures = f"{harness.DESIGN_FIGURES}\n\n| Where | Choice | Figure |\n|---|---|---|\n| a | b | 3 µs |\n"
    markdown.write_text(f"Measured long ago.\n\n| old table |\n\n{figures}", encoding="utf-8")
    row = harness.Row("1. throughput", "requests/s", "req/s", 100.0, 90.0)
    harness.write_results([row], tmp_path / "results.json", markdown, "fast")
    text = markdown.read_text(encoding="utf-8")
    assert "old table" not in text
    assert "| 1. throughput |" in text
    assert text.endswith(figures)


def test_a_first_run_writes_the_table_alone(tmp_path: Path) -> None:
    harness = load_harness()
    markdown = tmp_path / "results.md"
    harness.write_results(
        [harness.Row("1. throughput", "requests/s", "req/s", 100.0, 90.0)],
        tmp_path / "r.json",
        markdown,
        "fast",
    )
    assert harness.DESIGN_FIGURES not in markdown.read_text(encoding="utf-8")


def test_the_repository_s_results_have_the_design_figures() -> None:
    assert load_harness().DESIGN_FIGURES in (HARNESS.parent / "results.md").read_text(encoding="utf-8")
