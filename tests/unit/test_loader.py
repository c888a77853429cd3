import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2cwsgiutils import loader, wsgi_app

APP_INI = """\
[app:main]
use = call:tests.apps.probe:factory
url = %(TEST_LOADER_URL)s/x
"""

LOGGING_INI = """
[loggers]
keys = root, probe
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = {root_level}
handlers = console
[logger_probe]
level = {probe_level}
handlers =
qualname = c2cwsgiutils_test_probe
[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic
[formatter_generic]
format = %(asctime)s %(levelname)s %(message)s
"""


def write(tmp_path: Path, text: str, name: str = "app.ini") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Run the block with exactly this environment (hypothesis cannot use monkeypatch)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def preserved_logging() -> Iterator[None]:
    probe = logging.getLogger("c2cwsgiutils_test_probe")
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    try:
        yield
    finally:
        for handler in logging.root.handlers:
            if handler not in root_handlers:
                handler.close()
        probe.setLevel(logging.NOTSET)
        logging.root.setLevel(root_level)
        logging.root.handlers[:] = root_handlers


def app_settings(path: str) -> dict[str, str]:
    settings: dict[str, str] = loader.load_app(path).settings
    return settings


def test_settings_interpolate_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "http://db")
    assert app_settings(write(tmp_path, APP_INI))["url"] == "http://db/x"


def test_environment_value_with_percent_loads_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "http://user:p%40ss%@db")
    monkeypatch.setenv("TEST_LOADER_UNRELATED", "100%")
    assert app_settings(write(tmp_path, APP_INI))["url"] == "http://user:p%40ss%@db/x"


def test_names_differing_only_in_case_each_interpolate_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "upper")
    monkeypatch.setenv("http_proxy", "lower")
    path = write(
        tmp_path, "[app:main]\nuse = call:tests.apps.probe:factory\na = %(HTTP_PROXY)s\nb = %(http_proxy)s\n"
    )
    loader.check_config(path)
    assert app_settings(path) == {"a": "upper", "b": "lower"}


def test_reference_in_another_case_than_the_environment_fails_check_and_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DB", "x")
    monkeypatch.delenv("probe_db", raising=False)
    path = write(tmp_path, "[app:main]\nuse = call:tests.apps.probe:factory\ndb = %(probe_db)s\n")
    with pytest.raises(
        loader.ConfigFileError, match=r"uses %\(probe_db\)s, but no environment variable probe_db"
    ):
        loader.check_config(path)
    with pytest.raises(Exception, match="probe_db"):
        loader.load_app(path)


@pytest.mark.parametrize("name", ["HERE", "here", "Here", "__FILE__", "__file__"])
def test_environment_cannot_shadow_here_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "/somewhere/else")
    path = write(
        tmp_path,
        "[app:main]\nuse = call:tests.apps.probe:factory\nh = %(here)s\nf = %(__file__)s\n"
        + LOGGING_INI.format(root_level="INFO", probe_level="INFO")
        .replace("args = (sys.stderr,)", "args = ('%(here)s/app.log',)")
        .replace("class = StreamHandler", "class = FileHandler"),
    )
    loader.check_config(path)
    with preserved_logging():
        app = wsgi_app.create_application(path)
    assert app.settings == {"h": str(tmp_path), "f": path}
    assert (tmp_path / "app.log").exists()


def test_empty_environment_variable_interpolates_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "")
    path = write(tmp_path, APP_INI)
    loader.check_config(path)
    assert app_settings(path)["url"] == "/x"


def test_environ_defaults_fill_unset_or_empty_log_levels() -> None:
    assert loader.environ_defaults({"LOG_LEVEL": ""})["LOG_LEVEL"] == "INFO"
    assert loader.environ_defaults({})["SQL_LOG_LEVEL"] == "WARNING"


def test_environ_defaults_give_way_to_the_environment() -> None:
    assert loader.environ_defaults({"LOG_LEVEL": "DEBUG"})["LOG_LEVEL"] == "DEBUG"


def test_logging_config_with_percent_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_PERCENT", "50%")
    monkeypatch.setenv("TEST_LOADER_LEVEL", "ERROR")
    path = write(
        tmp_path, APP_INI + LOGGING_INI.format(root_level="INFO", probe_level="%(TEST_LOADER_LEVEL)s")
    )
    with preserved_logging():
        loader.setup_logging(path)
        assert logging.getLogger("c2cwsgiutils_test_probe").level == logging.ERROR


def test_logging_sections_are_case_sensitive_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_LEVEL", "ERROR")
    monkeypatch.setenv("probe_level", "DEBUG")
    path = write(
        tmp_path, APP_INI + LOGGING_INI.format(root_level="%(probe_level)s", probe_level="%(PROBE_LEVEL)s")
    )
    with preserved_logging():
        loader.setup_logging(path)
        assert logging.getLogger("c2cwsgiutils_test_probe").level == logging.ERROR
        assert logging.root.level == logging.DEBUG


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


def test_check_config_rejects_an_app_that_cannot_be_found(tmp_path: Path) -> None:
    with pytest.raises(loader.ConfigFileError, match="no-such-distribution") as info:
        loader.check_config(write(tmp_path, "[app:main]\nuse = egg:no-such-distribution\n"))
    assert "\n" not in str(info.value)


def test_check_config_rejects_a_log_level_logging_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "x")
    path = write(tmp_path, APP_INI + LOGGING_INI.format(root_level="INFO", probe_level="verbose"))
    with pytest.raises(loader.ConfigFileError, match=r"\[logger_probe\] level = verbose: not a level name"):
        loader.check_config(path)


def test_check_config_knows_here_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[app:main]\nuse = call:tests.apps.probe:factory\na = %(here)s\nb = %(__file__)s\n"
    )
    loader.check_config(path)
    assert app_settings(path) == {"a": str(tmp_path), "b": path}


def test_plaster_scheme_c2c_loads_with_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plaster

    monkeypatch.setenv("TEST_LOADER_URL", "via-plaster")
    settings = plaster.get_loader(f"c2c://{write(tmp_path, APP_INI)}").get_settings("app:main")
    assert settings["url"] == "via-plaster/x"


# The check agrees with the load: over ini files and environments, it passes exactly when the
# load (logging then app, as every worker does it) succeeds.
NAMES = ["PROBE_DB", "probe_db", "HERE", "here", "__FILE__", "http_proxy", "HTTP_PROXY", "LOG_LEVEL", "EMPTY"]
VALUES = ["", "x", "50%", "a%(here)sb", "INFO", "debug", "WARNING"]


def _check_passes(path: str) -> bool:
    try:
        loader.check_config(path)
    except loader.ConfigFileError as error:
        return "\n" in str(error)  # a message on several lines counts as a wrong answer
    return True


def _load_passes(path: str) -> bool:
    try:
        with preserved_logging():
            wsgi_app.create_application(path)
    except Exception:
        return False
    return True


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    env=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=5),
    refs=st.lists(st.sampled_from([*NAMES, "here", "__file__", "NEVER_SET"]), max_size=3),
    root_level=st.sampled_from(["INFO", "%(LOG_LEVEL)s", "%(PROBE_DB)s", "%(here)s", "%(EMPTY)s"]),
    use=st.sampled_from(
        ["call:tests.apps.probe:factory", "call:tests.apps.probe:missing", "egg:no-such-app"]
    ),
    with_logging=st.booleans(),
)
def test_check_passes_exactly_when_the_load_does(  # noqa: PLR0917 (hypothesis arguments)
    tmp_path: Path,
    env: dict[str, str],
    refs: list[str],
    root_level: str,
    use: str,
    with_logging: bool,
) -> None:
    options = "".join(f"o{index} = %({name})s\n" for index, name in enumerate(refs))
    text = f"[app:main]\nuse = {use}\n{options}"
    if with_logging:
        text += LOGGING_INI.format(root_level=root_level, probe_level="INFO")
    path = write(tmp_path, text, "iff.ini")
    with environment({"PATH": os.environ.get("PATH", ""), **env}):
        check, load = _check_passes(path), _load_passes(path)
    assert check == load, (text, env)


def test_the_agreement_test_sees_both_outcomes(tmp_path: Path) -> None:
    """Guard against an agreement test that only ever sees failures (or successes)."""
    good = write(tmp_path, "[app:main]\nuse = call:tests.apps.probe:factory\n", "good.ini")
    bad = write(tmp_path, "[app:main]\nuse = call:tests.apps.probe:factory\nx = %(NEVER_SET)s\n", "bad.ini")
    with environment({"PATH": os.environ.get("PATH", "")}):
        assert (_check_passes(good), _load_passes(good)) == (True, True)
        assert (_check_passes(bad), _load_passes(bad)) == (False, False)


def test_app_settings_are_a_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOADER_URL", "u")
    settings: Any = loader.get_loader(write(tmp_path, APP_INI)).get_settings("app:main")
    assert settings["url"] == "u/x"


@pytest.mark.parametrize(
    ("section", "package"),
    [
        ("use = call:not_imported_app.factories:main", "not_imported_app"),
        ("paste.app_factory = not_imported_app.sub:make", "not_imported_app"),
    ],
)
def test_app_logger_reads_the_factory_module_without_importing_it(
    tmp_path: Path, section: str, package: str
) -> None:
    """The gunicorn master applies the logging set-up too: it must not import the app's code."""
    ini = tmp_path / "app.ini"
    ini.write_text(f"[app:main]\n{section}\n", encoding="utf-8")
    assert loader.get_loader(str(ini)).app_logger() == package
    assert "not_imported_app" not in sys.modules
