"""The Dockerfile's environment defaults are the package's (checked without building the image)."""

import re
from pathlib import Path

from c2cwsgiutils import settings_catalogue

DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"
# The image's own variables, not settings of the package.
IMAGE_ONLY = {"PATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
# Settings whose value in the image is not the package's default (unset there: no user switch).
IMAGE_VALUES = {"C2CWSGIUTILS_USER": "33:33"}


def runtime_environment() -> dict[str, str]:
    """Parse the ENV instructions of the Dockerfile's last stage."""
    text = runtime_stage().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line))
    return env


def runtime_stage() -> str:
    return DOCKERFILE.read_text(encoding="utf-8").rsplit("\nFROM ", 1)[1]


def test_image_sets_every_environment_only_default() -> None:
    env = runtime_environment()
    assert {
        name: env[name] for name in env if name not in IMAGE_ONLY | set(IMAGE_VALUES)
    } == settings_catalogue.image_environment()


def test_image_values_that_differ_from_the_package_are_declared_settings() -> None:
    declared = {
        declaration.env for group in settings_catalogue.groups() for _, declaration in group.declarations()
    }
    env = runtime_environment()
    assert {name: env.get(name) for name in IMAGE_VALUES} == IMAGE_VALUES
    assert set(IMAGE_VALUES) <= declared


def test_image_has_no_user_so_that_an_apps_build_steps_run_as_root() -> None:
    """An app's Dockerfile written for the original installs into the venv; c2cwsgiutils_run drops root."""
    assert not re.search(r"^USER\b", runtime_stage(), flags=re.MULTILINE)


def test_image_sets_no_setting_that_the_ini_file_could_set() -> None:
    with_ini = {
        declaration.env
        for group in settings_catalogue.groups()
        for _, declaration in group.declarations()
        if declaration.ini
    }
    assert not with_ini & set(runtime_environment())
