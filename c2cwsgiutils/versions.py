"""The app's version information: ``{C2C_BASE_PATH}/versions.json``, a start-up log line and a metric.

The file is written at build time by ``c2cwsgiutils_genversion.py [GIT_TAG] GIT_HASH``
(:mod:`c2cwsgiutils.scripts.genversion`), usually in the app's Dockerfile::

    {"main": {"git_hash": "0123abc...", "git_tag": "1.2.3"}, "packages": {"pyramid": "2.0.2", ...}}

When it exists at ``C2C_VERSIONS_PATH`` (default ``/app/versions.json``), including this feature
serves it, logs the main version (INFO, logger ``c2cwsgiutils.versions``) and, when a metrics
backend is on, sets the gauge ``version`` to 1 with the git hash as its ``git_hash`` tag (label).
A file that is missing switches the feature off; one that cannot be read costs a warning, never
the app's start.
"""

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import stats
from c2cwsgiutils.config_utils import SettingsGroup, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.responses import json_response

LOG = logging.getLogger(__name__)
DEFAULT_PATH = "/app/versions.json"
METRIC = "version"
_VERSIONS_KEY = "c2cwsgiutils.versions"


@dataclasses.dataclass(frozen=True)
class VersionsSettings(SettingsGroup):
    """The version information."""

    TITLE = "Versions"

    path: str = setting(
        "C2C_VERSIONS_PATH",
        "c2c.versions_path",
        DEFAULT_PATH,
        "The file written by `c2cwsgiutils_genversion.py`; when it exists, "
        "`{C2C_BASE_PATH}/versions.json` serves it. Set in the environment, also where the command writes "
        "(else `versions.json` in its current directory, `/app` in the image).",
    )


def read(path: str | Path) -> dict[str, Any] | None:
    """Return the versions file's content, or None (with a warning) when it is not a JSON object."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        LOG.warning("cannot read the versions file %s: %s", path, error)
        return None
    if not isinstance(content, dict):
        LOG.warning("the versions file %s does not hold a JSON object", path)
        return None
    return content


def main_version(versions: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return the main ``(git_hash, git_tag)`` of a versions file's content."""
    main = versions.get("main")
    if not isinstance(main, dict):
        return None, None
    git_hash, git_tag = main.get("git_hash"), main.get("git_tag")
    return (
        str(git_hash) if git_hash else None,
        str(git_tag) if git_tag else None,
    )


def versions_view(request: Request) -> Response:
    """Answer the versions file as it was read at start-up."""
    return json_response(request.registry[_VERSIONS_KEY])


def includeme(config: Configurator) -> None:
    """Serve the versions file, log the main version and export it as a metric, when the file exists.

    Include it after the metrics (``c2cwsgiutils.stats_pyramid``), as ``c2cwsgiutils.pyramid``
    does, for the metric to find the backends.
    """
    if not first_time(config, "versions"):
        return
    path = VersionsSettings.of(config).path
    if not Path(path).exists():
        LOG.debug("no versions file at %s: no versions.json view", path)
        return
    versions = read(path)
    if versions is None:
        return
    config.registry[_VERSIONS_KEY] = versions
    add_ops_view(config, "versions", "/versions.json", versions_view, request_method=("GET", "HEAD"))
    git_hash, git_tag = main_version(versions)
    LOG.info("version: git hash %s, git tag %s", git_hash or "unknown", git_tag or "none")
    if git_hash:
        stats.set_gauge(METRIC, 1, tags={"git_hash": git_hash})
