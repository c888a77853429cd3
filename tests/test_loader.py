from pathlib import Path

import pytest

from c2cwsgiutils import loader

APP_INI = """\
[app:main]
use = call:c2cwsgiutils.routing:json_response
url = %(TEST_LOADER_URL)s/x
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "app.ini"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_settings_interpolate_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "http://db")
    settings = loader.get_loader(write(tmp_path, APP_INI)).get_settings("app:main")
    assert settings["url"] == "http://db/x"


def test_environment_value_with_percent_loads_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "http://user:p%40ss%@db")
    monkeypatch.setenv("TEST_LOADER_UNRELATED", "100%")
    settings = loader.get_loader(write(tmp_path, APP_INI)).get_settings("app:main")
    assert settings["url"] == "http://user:p%40ss%@db/x"


def test_names_differing_only_in_case_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "upper")
    monkeypatch.setenv("test_loader_url", "lower")
    settings = loader.get_loader(write(tmp_path, APP_INI)).get_settings("app:main")
    assert settings["url"] == "upper/x"


def test_environ_defaults_prefer_the_upper_case_spelling() -> None:
    assert loader.environ_defaults({"Path": "b", "PATH": "a", "path": "c"})["PATH"] == "a"


def test_environ_defaults_fill_unset_log_levels() -> None:
    defaults = loader.environ_defaults({"LOG_LEVEL": ""})
    assert defaults["LOG_LEVEL"] == "INFO"


def test_environ_defaults_give_way_to_the_environment() -> None:
    assert loader.environ_defaults({"LOG_LEVEL": "DEBUG"})["LOG_LEVEL"] == "DEBUG"


def test_logging_config_with_percent_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_PERCENT", "50%")
    monkeypatch.setenv("TEST_LOADER_LEVEL", "ERROR")
    path = write(
        tmp_path,
        "[loggers]\nkeys = root, probe\n[handlers]\nkeys =\n[formatters]\nkeys =\n"
        "[logger_root]\nhandlers =\n"
        "[logger_probe]\nlevel = %(TEST_LOADER_LEVEL)s\nhandlers =\nqualname = c2cwsgiutils_test_probe\n",
    )
    import logging

    probe = logging.getLogger("c2cwsgiutils_test_probe")
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    try:
        loader.setup_logging(path)
        assert probe.level == logging.ERROR
    finally:
        probe.setLevel(logging.NOTSET)
        logging.root.setLevel(root_level)
        logging.root.handlers[:] = root_handlers


def test_check_config_accepts_a_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "x")
    loader.check_config(write(tmp_path, APP_INI))


def test_check_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(loader.ConfigFileError, match="no such file"):
        loader.check_config(str(tmp_path / "missing.ini"))


def test_check_config_syntax_error_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(loader.ConfigFileError) as info:
        loader.check_config(write(tmp_path, "this is not an ini file\n[app:main]\n"))
    assert "\n" not in str(info.value)
    assert "app.ini" in str(info.value)


def test_check_config_without_app_section(tmp_path: Path) -> None:
    with pytest.raises(loader.ConfigFileError, match=r"no \[app:main\]"):
        loader.check_config(write(tmp_path, "[server:main]\nport = 1\n"))


def test_check_config_names_a_missing_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_LOADER_URL", raising=False)
    with pytest.raises(loader.ConfigFileError, match="no environment variable TEST_LOADER_URL is set"):
        loader.check_config(write(tmp_path, APP_INI))


def test_plaster_scheme_c2c_loads_with_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plaster

    monkeypatch.setenv("TEST_LOADER_URL", "via-plaster")
    settings = plaster.get_loader(f"c2c://{write(tmp_path, APP_INI)}").get_settings("app:main")
    assert settings["url"] == "via-plaster/x"


def test_check_config_knows_here_and_file(tmp_path: Path) -> None:
    loader.check_config(write(tmp_path, "[app:main]\nuse = egg:x\na = %(here)s\nb = %(__file__)s\n"))
