"""``c2cwsgiutils_settings``: the effective settings of an ini file plus the environment.

For each setting: its value (secrets masked), and whether it came from the environment, the ini
file or the default. The first thing to look at when a setting "is not picked up".
"""

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from c2cwsgiutils import loader, settings_catalogue, wsgi_app


def _app_settings(path: str, app_name: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return the app section's settings as the app receives them, or why there are none."""
    if not os.path.isfile(path):
        return None, f"no ini file at {path}: environment and defaults only"
    try:
        settings = loader.get_loader(path).get_settings(f"app:{app_name}")
    except Exception as error:
        return None, f"{path}: cannot read [app:{app_name}]: {' '.join(str(error).split())}"
    return dict(settings), None


def main(argv: Sequence[str] | None = None) -> int:
    """Print every setting with its effective value and source; exit 2 if one is invalid."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_settings",
        description="Show the effective c2cwsgiutils settings of an ini file plus the environment.",
    )
    parser.add_argument(
        "config", nargs="?", help="the ini file (default: $C2CWSGIUTILS_CONFIG or /app/production.ini)"
    )
    parser.add_argument("--app", default="main", help="the app section's name (default: main)")
    args = parser.parse_args(argv)
    path = args.config or wsgi_app.config_file()
    settings, note = _app_settings(path, args.app)
    print(f"# {note}" if note else f"# {path} [app:{args.app}] plus the environment")
    invalid = 0
    for group in settings_catalogue.groups():
        print(f"\n## {group.TITLE}")
        for _, declaration in group.declarations():
            result = settings_catalogue.effective(declaration, settings, os.environ)
            name = declaration.env + (f" / {declaration.ini}" if declaration.ini else "")
            line = f"{name} = {result.shown}  ({result.source})"
            if result.error:
                invalid += 1
                line += f"  INVALID: {result.error}"
            print(line)
    if invalid:
        print(f"c2cwsgiutils_settings: {invalid} invalid setting(s)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
