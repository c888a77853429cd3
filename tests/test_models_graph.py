"""The models graph: dot source of SQLAlchemy models, rendered by Graphviz's dot."""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from c2cwsgiutils import models_graph
from testing.fixtures import RunScript
from tests.apps import graph_models

pytestmark = [pytest.mark.graphviz]

EXAMPLE_APP = Path(__file__).parent.parent / "acceptance_tests" / "app"


@pytest.fixture(scope="module")
def source() -> str:
    out = io.StringIO()
    models_graph.generate_model_graph(graph_models, out)
    return out.getvalue()


def test_every_mapped_class_is_a_node(source: str) -> None:
    for name in ("Owner", "Pet", "Dog", "Cat"):
        assert f'  "{name}" [label=<' in source
    assert "NOT_A_MODEL" not in source


def test_nodes_have_the_table_and_typed_columns_with_keys(source: str) -> None:
    pet = next(line for line in source.splitlines() if line.startswith('  "Pet" '))
    assert "(graph_pet)" in pet
    assert (
        '<td align="left" port="owner_id">owner_id</td><td align="left">INTEGER</td><td align="left">FK</td>'
        in pet
    )
    assert '<td align="left" port="id">id</td><td align="left">INTEGER</td><td align="left">PK</td>' in pet
    assert "VARCHAR(20)" in pet


def test_foreign_keys_are_edges(source: str) -> None:
    assert '  "Pet":"owner_id" -> "Owner" [label="owner_id"];' in source


def test_inheritance_is_a_hollow_arrow_not_a_foreign_key(source: str) -> None:
    assert '  "Dog" -> "Pet" [arrowhead=empty];' in source
    assert '  "Cat" -> "Pet" [arrowhead=empty];' in source
    assert '"Dog":"id" -> "Pet"' not in source


def test_single_table_child_shows_no_columns_of_its_own(source: str) -> None:
    cat = next(line for line in source.splitlines() if line.startswith('  "Cat" '))
    assert "port=" not in cat


def test_dot_renders_it_to_svg(source: str, tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz's dot is needed (apt-get install graphviz)"
    output = tmp_path / "models.svg"
    models_graph.render(source, output, "svg")
    svg = output.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "graph_pet" in svg


def test_command_renders_svg_and_png(run_script: RunScript, tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz's dot is needed (apt-get install graphviz)"
    env = {"PYTHONPATH": str(Path(__file__).parent.parent)}
    for name in ("c2cwsgiutils_models_graph", "c2cwsgiutils-models-graph"):
        result = run_script(name, "tests.apps.graph_models", "-o", str(tmp_path / "m.svg"), env=env)
        assert result.returncode == 0, result.stderr
        assert "<svg" in (tmp_path / "m.svg").read_text(encoding="utf-8")
    result = run_script(
        "c2cwsgiutils_models_graph", "tests.apps.graph_models", "-o", str(tmp_path / "m.png"), env=env
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")


def test_command_prints_dot_source_without_output(run_script: RunScript) -> None:
    env = {"PYTHONPATH": str(Path(__file__).parent.parent)}
    result = run_script("c2cwsgiutils_models_graph", "tests.apps.graph_models", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith('digraph "tests.apps.graph_models" {')


def test_command_without_dot_says_so(run_script: RunScript, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(Path(__file__).parent.parent), "PATH": str(tmp_path)}
    result = run_script(
        "c2cwsgiutils_models_graph", "tests.apps.graph_models", "-o", str(tmp_path / "m.svg"), env=env
    )
    assert result.returncode == 1
    assert "needs Graphviz's dot, which is not installed" in result.stderr


def test_command_with_an_unknown_module_exits_2(run_script: RunScript) -> None:
    result = run_script("c2cwsgiutils_models_graph", "no_such_module_here")
    assert result.returncode == 2
    assert "cannot import no_such_module_here" in result.stderr


def test_example_app_script_renders_with_dot(tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz's dot is needed (apt-get install graphviz)"
    source = subprocess.run(
        [sys.executable, str(EXAMPLE_APP / "models_graph.py")], capture_output=True, text=True, check=True
    ).stdout
    assert '"Hello"' in source
    svg = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, check=True).stdout
    assert "hello" in svg
