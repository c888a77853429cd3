"""The Dockerfile's environment defaults are the package's (checked without building the image)."""

import re
from pathlib import Path

from c2cwsgiutils import settings_catalogue

DOCKERFILE = Path(__file__).parent.parent / "Dockerfile"
# The image's own variables, not settings of the package.
IMAGE_ONLY = {"PATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}


def runtime_environment() -> dict[str, str]:
    """Parse the ENV instructions of the Dockerfile's last stage."""
    stage = DOCKERFILE.read_text(encoding="utf-8").rsplit("\nFROM ", 1)[1]
    text = stage.replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line))
    return env


def test_image_sets_every_environment_only_default() -> None:
    env = runtime_environment()
    assert {
        name: env[name] for name in env if name not in IMAGE_ONLY
    } == settings_catalogue.image_environment()


def test_image_sets_no_setting_that_the_ini_file_could_set() -> None:
    with_ini = {
        declaration.env
        for group in settings_catalogue.groups()
        for _, declaration in group.declarations()
        if declaration.ini
    }
    assert not with_ini & set(runtime_environment())
