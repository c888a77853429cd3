"""The settings catalogue: README tables generated from the declarations, effective settings."""

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import c2cwsgiutils
from c2cwsgiutils import settings_catalogue
from c2cwsgiutils.config_utils import Setting, SettingsGroup
from testing.fixtures import RunScript

DOCS = Path(__file__).parents[2] / "docs"


def test_the_docs_tables_are_generated_from_the_declarations() -> None:
    """Each group's table is in one page of docs/, and up to date."""
    pages = {str(path): path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}
    assert settings_catalogue.update_pages(pages) == pages, "docs/ is out of date: run make docs"


def test_a_table_in_two_pages_is_refused() -> None:
    table = settings_catalogue.update_readme(
        "".join(f"{begin}\n{end}\n" for begin, end in map(settings_catalogue._markers, all_keys()))
    )
    with pytest.raises(ValueError, match="one is enough"):
        settings_catalogue.update_pages({"a.md": table, "b.md": table})


def all_keys() -> list[str]:
    return [settings_catalogue.group_key(group) for group in settings_catalogue.groups()]


def test_every_module_declaring_settings_is_in_the_catalogue() -> None:
    declaring = set()
    for module_info in pkgutil.walk_packages(c2cwsgiutils.__path__, "c2cwsgiutils."):
        if module_info.name == "c2cwsgiutils.gunicorn_config":
            continue
        module = importlib.import_module(module_info.name)
        if any(
            isinstance(value, type)
            and issubclass(value, SettingsGroup)
            and value.__module__ == module.__name__
            for value in vars(module).values()
            if value is not SettingsGroup
        ):
            declaring.add(module_info.name)
    assert declaring == set(settings_catalogue.FEATURE_MODULES)


def test_each_environment_variable_is_declared_once() -> None:
    names = [
        declaration.env for group in settings_catalogue.groups() for _, declaration in group.declarations()
    ]
    assert len(names) == len(set(names))


def test_each_setting_has_a_meaning() -> None:
    for group in settings_catalogue.groups():
        assert group.TITLE
        for _, declaration in group.declarations():
            assert declaration.doc.endswith("."), declaration.env


def test_update_readme_refuses_a_readme_without_a_table() -> None:
    with pytest.raises(ValueError, match="the table of ops_views is in none of the pages"):
        settings_catalogue.update_readme("# nothing here\n")


SECRET = Setting("C2C_TEST_SECRET", "c2c.test_secret", None, "A secret.", str, secret=True)


def test_effective_masks_a_set_secret() -> None:
    result = settings_catalogue.effective(SECRET, {"c2c.test_secret": "hunter2"}, {})
    assert (result.shown, result.source) == ("***", "ini key c2c.test_secret")


def test_effective_shows_an_unset_secret_as_unset() -> None:
    assert settings_catalogue.effective(SECRET, {}, {}).shown == "unset"


def test_effective_names_an_invalid_value() -> None:
    declaration = settings_catalogue.groups()[0].declaration("base_path")
    result = settings_catalogue.effective(declaration, {}, {"C2C_BASE_PATH": "/a?b"})
    assert result.error == "expected a URL path such as /c2c"


def settings_output(
    run_script: RunScript, *args: str, env: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    result = run_script("c2cwsgiutils_settings", *args, env=env)
    lines: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        if " = " in line:
            name, rest = line.split(" = ", 1)
            lines[name] = rest
    return result.returncode, lines, result.stderr


def test_settings_command_says_where_each_value_comes_from(
    run_script: RunScript, example_app_ini: Path
) -> None:
    code, lines, _ = settings_output(
        run_script, str(example_app_ini), env={"GUNICORN_THREADS": "8", "C2C_BASE_PATH": ""}
    )
    assert code == 0
    assert lines["C2C_BASE_PATH / c2c.base_path"] == "/c2c  (ini key c2c.base_path)"
    assert lines["GUNICORN_THREADS"] == "8  (environment variable GUNICORN_THREADS)"
    assert lines["DEVELOPMENT / c2c.development"] == "false  (default)"


def test_settings_command_exits_2_on_an_invalid_value(run_script: RunScript, tmp_path: Path) -> None:
    code, lines, stderr = settings_output(
        run_script, str(tmp_path / "none.ini"), env={"GUNICORN_WORKERS": "0"}
    )
    assert code == 2
    assert lines["GUNICORN_WORKERS"].endswith("INVALID: must be at least 1")
    assert stderr == "c2cwsgiutils_settings: 1 invalid setting(s)\n"
