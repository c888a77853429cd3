"""``c2cwsgiutils_genversion.py [GIT_TAG] GIT_HASH``: write the app's versions.json at build time.

The file holds the main version (the git hash, and the tag when given) and the version of every
installed distribution, read with :mod:`importlib.metadata` from the Python that runs the command
(the image's venv)::

    {"main": {"git_hash": "0123abc...", "git_tag": "1.2.3"}, "packages": {"pyramid": "2.0.2", ...}}

It is written to ``--output``, by default ``C2C_VERSIONS_PATH`` or else ``versions.json`` in the
current directory, as the original command did: in an image built from ours, whose ``WORKDIR`` is
``/app``, that is ``/app/versions.json``, where :mod:`c2cwsgiutils.versions` reads it. Exit codes:
0 written, 1 not writable, 2 bad usage.
"""

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from c2cwsgiutils.config_utils import lookup
from c2cwsgiutils.versions import VersionsSettings

DEFAULT_OUTPUT = "versions.json"
"""Where the file goes without ``--output`` or ``C2C_VERSIONS_PATH``: the current directory."""


def packages(distributions: Iterable[importlib.metadata.Distribution] | None = None) -> dict[str, str]:
    """Return the installed distributions' versions by name, sorted (the first found of a name wins)."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions() if distributions is None else distributions:
        name = distribution.metadata["Name"] if distribution.metadata else None
        if name and name not in found:
            found[name] = distribution.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def versions(git_hash: str, git_tag: str | None = None) -> dict[str, Any]:
    """Return the content of versions.json."""
    main = {"git_hash": git_hash, **({"git_tag": git_tag} if git_tag else {})}
    return {"main": main, "packages": packages()}


def write(path: Path, content: dict[str, Any]) -> None:
    """Write the JSON file whole or not at all (a temporary file renamed over it)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(content, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from the app's non-root user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def default_output(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``C2C_VERSIONS_PATH`` when it is set, else ``versions.json`` in the current directory.

    Not the view's default (``/app/versions.json``): the original wrote to the current directory,
    and app Dockerfiles that run the command elsewhere rely on it.
    """
    found = lookup(None, VersionsSettings.declaration("path").env, None, environ)
    return Path(found[1]) if found is not None else Path(DEFAULT_OUTPUT)


def main(argv: Sequence[str] | None = None) -> int:
    """Write versions.json; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_genversion.py",
        description="Write versions.json: the app's git hash and tag, and the installed packages' versions.",
    )
    parser.add_argument("git_tag", nargs="?", metavar="GIT_TAG", help="the release tag, if any")
    parser.add_argument("git_hash", metavar="GIT_HASH", help="the commit the app is built from")
    default = default_output()
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=default,
        help=f"where to write the file (default: C2C_VERSIONS_PATH or ./versions.json; here {default})",
    )
    args = parser.parse_args(argv)
    if not args.git_hash.strip():
        parser.error("GIT_HASH is empty")
    try:
        write(args.output, versions(args.git_hash.strip(), (args.git_tag or "").strip() or None))
    except OSError as error:
        print(
            f"c2cwsgiutils_genversion.py: cannot write {args.output}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
