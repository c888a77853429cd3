"""Every public name of upstream c2cwsgiutils 6.1 exists here or is listed, with its reason, in the docs.

The names are in upstream61_public_names.txt (read with ``ast`` from upstream's wheel by
scripts/upstream_names.py). The list is the section "Upstream 6.1 names we do not provide" of
docs/differences.md: a backticked ``c2cwsgiutils...`` name or ``script:...`` there names a missing
one (a module stands for its names). A name listed there must not exist here, so the section
cannot go stale when a name is added. Our own names are written there without the
``c2cwsgiutils.`` prefix, so that they are not taken for missing ones.
"""

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
NAMES = [
    line
    for line in (Path(__file__).parent / "upstream61_public_names.txt")
    .read_text(encoding="utf-8")
    .splitlines()
    if line and not line.startswith("#")
]
SECTION_TITLE = "## Upstream 6.1 names we do not provide"
LISTED = re.compile(r"`(c2cwsgiutils(?:\.\w+)*|script:[\w.-]+)`")
SCRIPTS = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"])


def resolves(name: str) -> bool:
    """Tell whether a dotted name (a module, or attributes of one) or ``script:name`` exists here."""
    if name.startswith("script:"):
        return name.removeprefix("script:") in SCRIPTS
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only the module asked for (or a parent of it) may be missing, not a dependency.
            if error.name is None or not (module_name + ".").startswith(error.name + "."):
                raise
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def section() -> str:
    text = (ROOT / "docs" / "differences.md").read_text(encoding="utf-8")
    _, title, rest = text.partition(SECTION_TITLE + "\n")
    assert title, f"docs/differences.md has no {SECTION_TITLE!r}"
    return re.split(r"^## ", rest, flags=re.MULTILINE)[0]


LISTED_NAMES = set(LISTED.findall(section()))


def test_the_names_were_read() -> None:
    assert len(NAMES) > 200
    assert sorted(set(NAMES)) == NAMES
    assert {"c2cwsgiutils.pyramid.includeme", "c2cwsgiutils.pretty_json._FastDumps"} <= set(NAMES)


def test_every_upstream_name_exists_or_is_listed() -> None:
    def listed(name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:cut]) in LISTED_NAMES for cut in range(1, len(parts) + 1))

    unexplained = [name for name in NAMES if not listed(name) and not resolves(name)]
    assert unexplained == []


@pytest.mark.parametrize("name", sorted(LISTED_NAMES))
def test_a_listed_name_is_upstream_s_and_missing_here(name: str) -> None:
    assert name in NAMES, "not one of upstream 6.1's names: a typo?"
    assert not resolves(name), "exists here now: remove it from the section of docs/differences.md"
