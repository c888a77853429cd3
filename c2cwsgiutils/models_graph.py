"""Graphviz ``dot`` description of the SQLAlchemy models of a module.

One node per mapped class (its name, its table, its columns with their types, ``PK`` and ``FK``
marks), an edge per foreign key (to the referenced class) and per inheritance (to the base
class, with a hollow arrow). ``c2cwsgiutils_models_graph MODULE -o models.svg`` renders it with
Graphviz's ``dot`` (SVG or PNG); ``generate_model_graph(module)`` prints the ``dot`` source.
"""

import argparse
import html
import importlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from c2cwsgiutils import extras

FORMATS = ("dot", "svg", "png")


def _mapped_classes(module: ModuleType) -> list[Any]:
    """Return the mapped classes that are attributes of the module, in name order, without duplicates."""
    sqlalchemy = extras.require("sqlalchemy", "db", "c2cwsgiutils.models_graph")
    found: dict[int, Any] = {}
    for name in sorted(vars(module)):
        value = getattr(module, name)
        if not isinstance(value, type):
            continue
        mapper = sqlalchemy.inspect(value, raiseerr=False)
        if mapper is not None and getattr(mapper, "is_mapper", False) and mapper.class_ is value:
            found.setdefault(id(value), value)
    return list(found.values())


def _quoted(name: str) -> str:
    """Escape a name for a double-quoted dot string."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _type_name(column: Any) -> str:
    try:
        return str(column.type)
    except Exception:  # a type that compiles only with a dialect
        return type(column.type).__name__


def _own_table(mapper: Any) -> Any:
    """Return the table a class adds (None for single-table inheritance: its parent's)."""
    table = mapper.local_table
    if mapper.inherits is not None and table is mapper.inherits.local_table:
        return None
    return table


def _node(cls: Any) -> str:
    import sqlalchemy  # noqa: PLC0415

    table = _own_table(sqlalchemy.inspect(cls))
    rows = [
        f'<tr><td colspan="3" bgcolor="lightgrey"><b>{html.escape(cls.__name__)}</b>'
        + (f" ({html.escape(table.fullname)})" if table is not None else "")
        + "</td></tr>"
    ]
    if table is not None:
        for column in table.columns:
            marks = " ".join(
                mark for mark, flag in (("PK", column.primary_key), ("FK", bool(column.foreign_keys))) if flag
            )
            rows.append(
                f'<tr><td align="left" port="{html.escape(column.name)}">{html.escape(column.name)}</td>'
                f'<td align="left">{html.escape(_type_name(column))}</td>'
                f'<td align="left">{marks}</td></tr>'
            )
    label = '<table border="0" cellborder="1" cellspacing="0">' + "".join(rows) + "</table>"
    return f'  "{cls.__name__}" [label=<{label}>];'


def model_graph(module: ModuleType) -> str:
    """Return the ``dot`` source of the module's models."""
    import sqlalchemy  # noqa: PLC0415

    classes = _mapped_classes(module)
    by_table: dict[Any, Any] = {}
    for cls in classes:
        table = _own_table(sqlalchemy.inspect(cls))
        if table is not None:
            by_table.setdefault(table, cls)
    lines = [
        f'digraph "{module.__name__}" {{',
        "  rankdir=LR;",
        '  node [shape=plaintext, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    lines.extend(_node(cls) for cls in classes)
    for cls in classes:
        mapper = sqlalchemy.inspect(cls)
        table = _own_table(mapper)
        if mapper.inherits is not None and mapper.inherits.class_ in classes:
            lines.append(f'  "{cls.__name__}" -> "{mapper.inherits.class_.__name__}" [arrowhead=empty];')
        if table is None:
            continue
        for column in table.columns:
            for foreign_key in column.foreign_keys:
                target = by_table.get(foreign_key.column.table)
                if target is None or (mapper.inherits is not None and target is mapper.inherits.class_):
                    continue
                lines.append(
                    f'  "{cls.__name__}":"{_quoted(column.name)}" -> "{target.__name__}" '
                    f'[label="{_quoted(column.name)}"];'
                )
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate_model_graph(module: ModuleType, out: TextIO | None = None) -> None:
    """Print the ``dot`` source of the module's models (to ``out``, default stdout)."""
    (out or sys.stdout).write(model_graph(module))


def render(source: str, output: Path, fmt: str) -> None:
    """Write ``source`` to ``output`` as ``fmt``: itself for ``dot``, else rendered by Graphviz."""
    if fmt == "dot":
        output.write_text(source, encoding="utf-8")
        return
    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError(
            f"rendering {fmt.upper()} needs Graphviz's dot, which is not installed (apt-get install graphviz)"
        )
    subprocess.run([dot, f"-T{fmt}", "-o", str(output)], input=source.encode(), check=True, timeout=120)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the models graph of a module: ``c2cwsgiutils_models_graph MODULE [-o FILE]``."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_models_graph",
        description="Draw the SQLAlchemy models of a module as a Graphviz graph.",
    )
    parser.add_argument("module", help="the module holding the mapped classes, e.g. my_app.models")
    parser.add_argument(
        "-o", "--output", type=Path, help="file to write (.dot, .svg or .png); default: dot source on stdout"
    )
    parser.add_argument("-T", "--format", choices=FORMATS, help="output format (default: from the extension)")
    args = parser.parse_args(argv)
    try:
        module = importlib.import_module(args.module)
    except ImportError as error:
        print(f"c2cwsgiutils_models_graph: cannot import {args.module}: {error}", file=sys.stderr)
        return 2
    source = model_graph(module)
    if args.output is None:
        sys.stdout.write(source)
        return 0
    fmt = args.format or args.output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        print(
            f"c2cwsgiutils_models_graph: unknown format {fmt!r}: use one of {', '.join(FORMATS)}",
            file=sys.stderr,
        )
        return 2
    try:
        render(source, args.output, fmt)
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        print(f"c2cwsgiutils_models_graph: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
