"""The package's modules import each other without a cycle, deferred imports included.

A cycle broken by an import inside a function still ties two modules together: each needs the
other to be read. Imports under ``if TYPE_CHECKING:`` are not run, and are left out.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "c2cwsgiutils"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """Return the package's modules that ``module`` imports (run-time imports only)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in modules else source)
        for child_node in ast.iter_child_nodes(node):
            visit(child_node)

    visit(tree)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_through_a_deferred_import_is_found() -> None:
    source = "def late():\n    from c2cwsgiutils import a  # noqa\n"
    modules = {"c2cwsgiutils", "c2cwsgiutils.a", "c2cwsgiutils.b"}
    graph = {
        "c2cwsgiutils": set(),
        "c2cwsgiutils.a": imported(
            ast.parse("from c2cwsgiutils.b import x\n"), "c2cwsgiutils.a", False, modules
        ),
        "c2cwsgiutils.b": imported(ast.parse(source), "c2cwsgiutils.b", False, modules),
    }
    assert cycles(graph) == [["c2cwsgiutils.a", "c2cwsgiutils.b"]]


def test_an_import_for_type_checking_only_is_not_a_cycle() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from c2cwsgiutils import a\n"
    modules = {"c2cwsgiutils.a", "c2cwsgiutils.b"}
    graph = {
        "c2cwsgiutils.a": imported(ast.parse("import c2cwsgiutils.b\n"), "c2cwsgiutils.a", False, modules),
        "c2cwsgiutils.b": imported(ast.parse(source), "c2cwsgiutils.b", False, modules),
    }
    assert cycles(graph) == []
