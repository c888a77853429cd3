"""Every setting of the toolkit, gathered from the features that declare them.

The settings tables of docs/ are generated from here (``make docs``; a test fails when they
differ), and ``c2cwsgiutils_settings`` shows the effective value of each with where it came from.
"""

import argparse
import dataclasses
import importlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from c2cwsgiutils.config_utils import Setting, SettingError, SettingsGroup, lookup

# The modules that declare settings, in the order the docs show them.
FEATURE_MODULES = (
    "c2cwsgiutils.ops_views",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.errors",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.client_info",
    "c2cwsgiutils.metrics.outgoing",
    "c2cwsgiutils.pyramid_logging",
    "c2cwsgiutils.logging_view",
    "c2cwsgiutils.server.gunicorn_settings",
    "c2cwsgiutils.broadcast",
    "c2cwsgiutils.broadcast.redis_connection",
    "c2cwsgiutils.db",
    "c2cwsgiutils.database.maintenance",
    "c2cwsgiutils.sql_profiler",
    "c2cwsgiutils.stats",
    "c2cwsgiutils.prometheus",
    "c2cwsgiutils.health_check",
    "c2cwsgiutils.versions",
    "c2cwsgiutils.debug",
    "c2cwsgiutils.sentry",
)
MASK = "***"


def groups() -> list[type[SettingsGroup]]:
    """Return every settings group, importing the feature modules that declare them."""
    found: list[type[SettingsGroup]] = []
    for name in FEATURE_MODULES:
        module = importlib.import_module(name)
        found.extend(
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, SettingsGroup)
            and value is not SettingsGroup
            and value.__module__ == name
        )
    return found


def group_key(group: type[SettingsGroup]) -> str:
    """Return the name a group's table has in the docs: its module's, under the package."""
    return group.__module__.removeprefix("c2cwsgiutils.")


def markdown_table(group: type[SettingsGroup]) -> str:
    """Return the group's settings as a Markdown table."""
    declarations = [declaration for _, declaration in group.declarations()]
    with_ini = any(declaration.ini for declaration in declarations)
    header = ["Environment variable", *(["ini key"] if with_ini else []), "Default", "Meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for declaration in declarations:
        cells = [f"`{declaration.env}`"]
        if with_ini:
            cells.append(f"`{declaration.ini}`" if declaration.ini else "")
        default = declaration.shown_default()
        literal = declaration.default_doc is None and default != "unset"
        cells.append(f"`{default}`" if literal else default)
        cells.append(declaration.doc + (" A secret: never logged or shown." if declaration.secret else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markers(key: str) -> tuple[str, str]:
    return (
        f"<!-- settings:{key} (generated from the declarations by `make docs`) -->",
        f"<!-- end of settings:{key} -->",
    )


def _replacement(block: str) -> Callable[[re.Match[str]], str]:
    return lambda _: block


def update_readme(text: str) -> str:
    """Return one page (a README of its own) with every group's table regenerated between its markers."""
    return update_pages({"README": text})["README"]


def update_pages(pages: Mapping[str, str]) -> dict[str, str]:
    """Return the pages (by name) with every group's table regenerated between its markers.

    Each group's table is in exactly one of the pages, the one of its feature.
    """
    updated = dict(pages)
    for group in groups():
        begin, end = _markers(group_key(group))
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        holders = [name for name, text in updated.items() if pattern.search(text)]
        if len(holders) != 1:
            where = "none of the pages" if not holders else f"{', '.join(holders)} (one is enough)"
            raise ValueError(f"the table of {group_key(group)} is in {where}: add {begin} and {end}")
        name = holders[0]
        updated[name] = pattern.sub(_replacement(f"{begin}\n{markdown_table(group)}\n{end}"), updated[name])
    return updated


def image_environment() -> dict[str, str]:
    """Return the environment defaults the Docker image sets: those of the environment-only settings.

    A setting that has an ini key gets none: the environment wins over the ini file, so a default
    in the image would hide the app's own ``production.ini``.
    """
    defaults: dict[str, str] = {}
    for group in groups():
        for _, declaration in group.declarations():
            computed = declaration.default_doc is not None  # such as 2 × CPUs + 1  # noqa: RUF003
            if declaration.ini or declaration.secret or computed or not declaration.default_text():
                continue
            defaults[declaration.env] = declaration.default_text()
    return defaults


@dataclasses.dataclass(frozen=True)
class Effective:
    """The value a setting takes, and where it comes from."""

    declaration: Setting[Any]
    shown: str
    source: str
    error: str | None = None


def effective(
    declaration: Setting[Any], settings: Mapping[str, Any] | None, environ: Mapping[str, str]
) -> Effective:
    """Resolve one setting as its feature will, with secrets masked."""
    found = lookup(settings, declaration.env, declaration.ini, environ)
    source = "default" if found is None else found[0]
    try:
        value = declaration.resolve(settings, environ)
    except SettingError as error:
        raw = MASK if declaration.secret else repr(found[1] if found else None)
        return Effective(declaration, raw, source, str(error).split(": ", 1)[-1])
    if found is None:
        shown = declaration.shown_default()
    elif declaration.secret:
        shown = MASK
    else:
        shown = "off" if value is None else str(value)
    return Effective(declaration, shown, source)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate (or check) the docs' settings tables: ``python -m c2cwsgiutils.settings_catalogue``."""
    parser = argparse.ArgumentParser(description="Regenerate the settings tables of the docs' pages.")
    parser.add_argument("pages", type=Path, nargs="+", help="the Markdown pages that hold the tables")
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is not up to date")
    args = parser.parse_args(argv)
    texts = {str(path): path.read_text(encoding="utf-8") for path in args.pages}
    try:
        updated = update_pages(texts)
    except ValueError as error:
        print(f"{' '.join(texts)}: {error}", file=sys.stderr)
        return 1
    stale = [name for name, text in texts.items() if updated[name] != text]
    if args.check:
        if stale:
            print(f"{', '.join(stale)}: the settings tables are out of date; run make docs", file=sys.stderr)
            return 1
        return 0
    for name in stale:
        Path(name).write_text(updated[name], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
