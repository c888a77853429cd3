"""Optional dependencies: the core works without the extras, and says which one a feature needs."""

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))

# Runs in a fresh interpreter where the optional libraries cannot be imported, as in an
# environment where only `pip install c2cwsgiutils` was done.
WITHOUT_EXTRAS = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        blocked = {"gunicorn", "sqlalchemy", "psycopg", "psycopg2", "cornice", "redis", "prometheus_client",
                   "pyramid_tm", "transaction", "sentry_sdk"}
        if name.split(".")[0] in blocked or name == "zope.sqlalchemy":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
import webtest
from pyramid.config import Configurator
config = Configurator(settings={})
config.include("c2cwsgiutils.pyramid")
app = webtest.TestApp(config.make_wsgi_app())
print(app.get("/nowhere", status=404).json["status"])
from c2cwsgiutils.scripts import run
sys.exit(run.main([]))
"""


def test_core_dependencies_leave_the_features_libraries_to_extras() -> None:
    core = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    for library in (
        "gunicorn",
        "sqlalchemy",
        "psycopg",
        "cornice",
        "redis",
        "prometheus",
        "pyramid_tm",
        "zope.sqlalchemy",
    ):
        assert library not in core


# Extras for the test helpers only: the image (`all`) does not need them, `dev` does.
TEST_EXTRAS = {"test-images"}


def test_all_extra_holds_every_feature_extra() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    features = sorted(name for name in extras if name not in {"all", "dev", *TEST_EXTRAS})
    assert extras["all"] == [f"c2cwsgiutils[{','.join(features)}]"]


def test_dev_extra_holds_the_test_helpers_extras() -> None:
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    for extra in TEST_EXTRAS:
        assert f"c2cwsgiutils[{extra}]" in dev


# The comparison module imported where Pillow and numpy cannot be: `pip install c2cwsgiutils[all]`.
WITHOUT_IMAGE_LIBRARIES = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"numpy", "PIL"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
import c2cwsgiutils.acceptance.image
"""


def test_image_comparison_without_its_extra_names_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_IMAGE_LIBRARIES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "c2cwsgiutils.extras.MissingExtraError: c2cwsgiutils.acceptance.image (check_image) needs numpy, "
        "which is not installed: pip install 'c2cwsgiutils[test-images]'"
    )


def test_core_works_without_extras_and_run_names_the_missing_one() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout == "404\n", result.stderr
    assert result.returncode == 2
    assert result.stderr == (
        "c2cwsgiutils_run: c2cwsgiutils_run needs gunicorn, which is not installed: "
        "pip install 'c2cwsgiutils[server]'\n"
    )
