#!/usr/bin/env python3
"""The image tags a build publishes, from the git branch or tag it builds.

Every branch is built and tested; only these publish:

- branch ``main``: ``latest``;
- tag ``X.Y.Z``: ``X.Y.Z``, ``X.Y`` and ``X``;
- branch ``release_N`` (rebuilt every night): ``N``, so that base image updates reach ``:N``.

Prints one tag a line (nothing for a build that publishes nothing). Exit 2 on bad arguments.
"""

import argparse
import re
import sys
from collections.abc import Sequence

_VERSION_TAG = re.compile(r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)")
_RELEASE_BRANCH = re.compile(r"release_(?P<major>0|[1-9]\d*)")


def image_tags(branch: str | None = None, tag: str | None = None) -> list[str]:
    """Return the image tags to publish for a build of ``tag`` (if any) or else of ``branch``."""
    if tag:
        match = _VERSION_TAG.fullmatch(tag)
        if match is None:
            return []
        major, minor = match["major"], match["minor"]
        return [tag, f"{major}.{minor}", major]
    if branch == "main":
        return ["latest"]
    match = _RELEASE_BRANCH.fullmatch(branch or "")
    return [match["major"]] if match else []


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tags for the branch or tag given (default: Jenkins' BRANCH_NAME and TAG_NAME)."""
    parser = argparse.ArgumentParser(prog="image_tags.py", description=__doc__.splitlines()[0])
    parser.add_argument("--branch", default="", help="the branch built (Jenkins: $BRANCH_NAME)")
    parser.add_argument("--tag", default="", help="the git tag built, if any (Jenkins: $TAG_NAME)")
    parser.add_argument("--image", default="", help="print IMAGE:TAG rather than TAG")
    args = parser.parse_args(argv)
    if not args.branch and not args.tag:
        parser.error("give --branch or --tag")
    for tag in image_tags(args.branch, args.tag):
        print(f"{args.image}:{tag}" if args.image else tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
