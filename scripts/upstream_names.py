#!/usr/bin/env python3
"""Print upstream c2cwsgiutils' public names, read with ``ast`` from an extracted wheel.

Usage: ``scripts/upstream_names.py EXTRACTED_WHEEL_DIR > tests/unit/upstream61_public_names.txt``.

The names are the package's modules (those without a ``_`` part), the functions, classes and
variables each defines at module level (plus its ``__all__``), and the console scripts of its
``entry_points.txt``. Names starting with ``_`` are left out, except those in ``KEPT_PRIVATE``.
Nothing of the wheel is imported.
"""

import ast
import configparser
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

KEPT_PRIVATE = {"c2cwsgiutils.pretty_json._FastDumps"}  # clients import it
HEADER = """\
# Upstream c2cwsgiutils 6.1.10's public names, read with ast from its wheel (nothing imported).
# Regenerate: pip download --no-deps c2cwsgiutils==6.1.10, extract the wheel, then
# scripts/upstream_names.py EXTRACTED_DIR > tests/unit/upstream61_public_names.txt
# Modules as c2cwsgiutils.x, their attributes as c2cwsgiutils.x.name, console scripts as script:name."""


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _targets(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _targets(element)


def _defined(body: Iterable[ast.stmt]) -> Iterator[str]:
    """Names a module body defines (not imports), looking into ``if`` and ``try`` blocks."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _targets(target)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            yield from _targets(node.target)
        elif isinstance(node, ast.If) and not _is_main_guard(node):
            yield from _defined([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            yield from _defined([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                yield from _defined(handler.body)


def _all(tree: ast.Module) -> Iterator[str]:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and "__all__" in [name for target in node.targets for name in _targets(target)]
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            yield from (
                e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )


def public_names(wheel_dir: Path) -> list[str]:
    """Return the sorted public names of the c2cwsgiutils package extracted in ``wheel_dir``."""
    names: set[str] = set()
    for source in sorted((wheel_dir / "c2cwsgiutils").rglob("*.py")):
        parts = source.relative_to(wheel_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        module = ".".join(parts)
        names.add(module)
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
        for name in {*_defined(tree.body), *_all(tree)}:
            dotted = f"{module}.{name}"
            if not name.startswith("_") or dotted in KEPT_PRIVATE:
                names.add(dotted)
    for entry_points in wheel_dir.glob("*.dist-info/entry_points.txt"):
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(entry_points, encoding="utf-8")
        if parser.has_section("console_scripts"):
            names.update(f"script:{script}" for script in parser["console_scripts"])
    return sorted(names)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the header and the names of the wheel extracted in the directory given."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1 or not (Path(args[0]) / "c2cwsgiutils").is_dir():
        print("usage: upstream_names.py EXTRACTED_WHEEL_DIR", file=sys.stderr)
        return 2
    print(HEADER)
    print("\n".join(public_names(Path(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
