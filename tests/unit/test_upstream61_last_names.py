"""The last of upstream 6.1's names: aliases, settings' names, retry, approx, Profile, the logconfig dict."""

import logging
import pstats
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pyramid.config import Configurator
from pyramid.request import Request

import c2cwsgiutils
from c2cwsgiutils import auth, client_info, debug, pyramid_logging, wsgi_app
from c2cwsgiutils.acceptance import image, retry, utils
from c2cwsgiutils.acceptance.server import clean_environ
from c2cwsgiutils.profiler import Profile

REPO = Path(__file__).parents[2]


def test_filter_is_the_client_info_middleware() -> None:
    assert client_info.Filter is client_info.ClientInfoFilter


def test_np_ndarray_int_is_pixels() -> None:
    assert image.NpNdarrayInt == image.Pixels


# Settings' names.

# Upstream's constant (without _ENV / _PROP) -> the AuthSettings field that declares the setting.
AUTH_CONSTANTS = {
    "SECRET": "secret",
    "GITHUB_CLIENT_ID": "github_client_id",
    "GITHUB_CLIENT_SECRET": "github_client_secret",
    "GITHUB_AUTH_SECRET": "github_secret",
    "GITHUB_AUTH_COOKIE": "github_cookie",
    "GITHUB_SCOPE": "github_scope",
    "GITHUB_AUTH_URL": "github_auth_url",
    "GITHUB_TOKEN_URL": "github_token_url",
    "GITHUB_USER_URL": "github_user_url",
    "GITHUB_AUTH_PROXY_URL": "github_proxy_url",
}


@pytest.mark.parametrize(("constant", "field"), sorted(AUTH_CONSTANTS.items()))
def test_auth_constants_name_the_declared_settings(constant: str, field: str) -> None:
    declaration = auth.AuthSettings.declaration(field)
    assert getattr(auth, f"{constant}_ENV") == declaration.env
    assert getattr(auth, f"{constant}_PROP") == declaration.ini


# Upstream 6.1.10's values of the constants (c2cwsgiutils/auth.py of its wheel): ours must be the same.
UPSTREAM_VALUES = {
    "SECRET_ENV": "C2C_SECRET",
    "SECRET_PROP": "c2c.secret",
    "GITHUB_CLIENT_ID_ENV": "C2C_AUTH_GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_ID_PROP": "c2c.auth.github.client_id",
    "GITHUB_CLIENT_SECRET_ENV": "C2C_AUTH_GITHUB_CLIENT_SECRET",
    "GITHUB_CLIENT_SECRET_PROP": "c2c.auth.github.client_secret",
    "GITHUB_AUTH_SECRET_ENV": "C2C_AUTH_GITHUB_SECRET",
    "GITHUB_AUTH_SECRET_PROP": "c2c.auth.github.auth.secret",
    "GITHUB_AUTH_COOKIE_ENV": "C2C_AUTH_GITHUB_COOKIE",
    "GITHUB_AUTH_COOKIE_PROP": "c2c.auth.github.auth.cookie",
    "GITHUB_SCOPE_ENV": "C2C_AUTH_GITHUB_SCOPE",
    "GITHUB_SCOPE_PROP": "c2c.auth.github.scope",
    "GITHUB_AUTH_URL_ENV": "C2C_AUTH_GITHUB_AUTH_URL",
    "GITHUB_AUTH_URL_PROP": "c2c.auth.github.auth_url",
    "GITHUB_TOKEN_URL_ENV": "C2C_AUTH_GITHUB_TOKEN_URL",
    "GITHUB_TOKEN_URL_PROP": "c2c.auth.github.token_url",
    "GITHUB_USER_URL_ENV": "C2C_AUTH_GITHUB_USER_URL",
    "GITHUB_USER_URL_PROP": "c2c.auth.github.user_url",
    "GITHUB_AUTH_PROXY_URL_ENV": "C2C_AUTH_GITHUB_PROXY_URL",
    "GITHUB_AUTH_PROXY_URL_PROP": "c2c.auth.github.auth.proxy_url",
}


@pytest.mark.parametrize(("name", "value"), sorted(UPSTREAM_VALUES.items()))
def test_auth_constants_have_upstream_s_values(name: str, value: str) -> None:
    assert getattr(auth, name) == value


def test_every_auth_setting_constant_is_checked() -> None:
    found = {
        match.group(1)
        for name in vars(auth)
        if (match := re.fullmatch(r"((?:SECRET|GITHUB_\w+))_(?:ENV|PROP)", name))
    }
    assert found == set(AUTH_CONSTANTS)


def test_github_scope_default_is_the_declared_default() -> None:
    assert auth.GITHUB_SCOPE_DEFAULT == auth.AuthSettings.declaration("github_scope").default == "repo"


def test_use_session_names_a_setting_that_is_not_read() -> None:
    assert (auth.USE_SESSION_ENV, auth.USE_SESSION_PROP) == ("C2C_USE_SESSION", "c2c.use_session")
    assert all(declaration.env != "C2C_USE_SESSION" for _, declaration in auth.AuthSettings.declarations())


def test_debug_switch_names_are_upstream_s() -> None:
    assert (debug.ENV_KEY, debug.CONFIG_KEY) == ("C2C_DEBUG_VIEW_ENABLED", "c2c.debug_view_enabled")


def request_with(settings: dict[str, str]) -> Request:
    request = Request.blank("/")
    request.registry = Configurator(settings=settings).registry
    return request


def test_get_expected_secret_is_c2c_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_SECRET", raising=False)
    assert auth.get_expected_secret(request_with({})) == ""
    assert auth.get_expected_secret(request_with({"c2c.secret": "from-ini"})) == "from-ini"
    monkeypatch.setenv("C2C_SECRET", "from-env")
    assert auth.get_expected_secret(request_with({"c2c.secret": "from-ini"})) == "from-env"


def test_is_enabled_reads_a_boolean_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("C2C_TEST_VIEW_ENABLED", "c2c.test_view_enabled")
    monkeypatch.delenv(names[0], raising=False)
    assert not auth.is_enabled(Configurator(settings={}), *names)
    assert not auth.is_enabled(Configurator(settings={names[1]: "true"}))
    assert auth.is_enabled(Configurator(settings={names[1]: "true"}), *names)
    assert not auth.is_enabled(Configurator(settings={names[1]: "false"}), *names)
    monkeypatch.setenv(names[0], "1")
    assert auth.is_enabled(Configurator(settings={names[1]: "false"}), *names)
    monkeypatch.setenv(names[0], "")
    assert not auth.is_enabled(Configurator(settings={}), *names)


# retry.


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def failing(times: int, error: type[Exception] = ValueError) -> tuple[list[int], Any]:
    calls: list[int] = []

    def func(value: int) -> int:
        calls.append(value)
        if len(calls) <= times:
            raise error(f"attempt {len(calls)}")
        return value * 2

    return calls, func


def test_retry_calls_again_with_a_growing_delay(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    calls, func = failing(2)
    with caplog.at_level(logging.WARNING, "c2cwsgiutils.acceptance.retrying"):
        assert retry(ValueError, tries=3, delay=0.01, backoff=3)(func)(21) == 42
    assert calls == [21, 21, 21]
    assert sleeps == pytest.approx([0.01, 0.03])
    assert "attempt 1" in caplog.records[0].getMessage()


def test_retry_defaults_are_three_tries_from_half_a_second(sleeps: list[float]) -> None:
    calls, func = failing(5)
    with pytest.raises(ValueError, match="attempt 3"):
        retry(ValueError)(func)(1)
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]


def test_retry_lets_other_exceptions_through(sleeps: list[float]) -> None:
    calls, func = failing(1, KeyError)
    with pytest.raises(KeyError):
        retry(ValueError, tries=5)(func)(1)
    assert (len(calls), sleeps) == (1, [])


def test_retry_takes_a_tuple_of_exceptions(sleeps: list[float]) -> None:
    calls, func = failing(1, KeyError)
    assert retry((ValueError, KeyError), tries=2, delay=0.001)(func)(2) == 4
    assert len(calls) == 2


def test_retry_once_is_a_plain_call(sleeps: list[float]) -> None:
    calls, func = failing(1)
    with pytest.raises(ValueError, match="attempt 1"):
        retry(ValueError, tries=1)(func)(1)
    assert (len(calls), sleeps) == (1, [])


def test_retry_is_upstream_s_decorator_from_the_package(sleeps: list[float]) -> None:
    import c2cwsgiutils.acceptance

    attempts = []

    @c2cwsgiutils.acceptance.retry(ValueError, tries=2, delay=0.001)
    def flaky() -> str:
        """Fail once."""
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first")
        return "done"

    assert flaky() == "done"
    assert (flaky.__name__, flaky.__doc__) == ("flaky", "Fail once.")


# approx.


class Point(NamedTuple):
    x: float
    y: float


def test_approx_makes_every_float_approximate() -> None:
    expected = {"a": 0.1 + 0.2, "b": [1, 2.0000001, ("x", 3.0)], "c": {"d": None, "e": Point(1.0, 2.0)}}
    actual = {"a": 0.3, "b": [1, 2.0, ("x", 3.0)], "c": {"d": None, "e": Point(1.0, 2.0)}}
    assert actual == utils.approx(expected)
    assert {**actual, "a": 0.31} != utils.approx(expected)
    assert {**actual, "b": [1, 2.0, ["x", 3.0]]} != utils.approx(expected)
    assert expected["a"] == 0.1 + 0.2  # the argument is not changed


def test_approx_passes_its_keywords_to_pytest_approx() -> None:
    actual = {"v": [0.31]}
    assert actual == utils.approx({"v": [0.3]}, abs=0.02)
    assert actual != utils.approx({"v": [0.3]}, rel=0.01)


def test_approx_of_a_scalar() -> None:
    assert utils.approx(1.0) == 1.0 + 1e-9
    assert utils.approx(5) == 5
    assert utils.approx("x") == "x"
    assert utils.approx(Point(1.0, 2.0)) == Point(1.0, 2.0 + 1e-9)


# Profile.


def work() -> int:
    return sum(number * number for number in range(1000))


def profiled_calls(path: Path) -> int:
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return sum(entry[1] for (_, _, name), entry in stats.items() if name == "work")


def test_profile_block_dumps_its_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "block.prof"
    with Profile(str(path)):
        work()
    assert profiled_calls(path) == 1
    assert capsys.readouterr().out == ""


def test_profile_prints_the_most_expensive_functions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Profile(tmp_path / "printed.prof", print_number=3):
        work()
    out = capsys.readouterr().out
    assert "cumulative" in out
    assert "due to restriction <3>" in out


def test_profile_as_a_decorator_adds_up_its_calls(tmp_path: Path) -> None:
    path = tmp_path / "decorated.prof"
    decorated = Profile(str(path))(work)
    decorated()
    decorated()
    assert profiled_calls(path) == 2


def test_profile_dumps_when_the_function_raises(tmp_path: Path) -> None:
    path = tmp_path / "raised.prof"

    @Profile(str(path))
    def work_then_fail() -> None:
        work()
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        work_then_fail()
    assert profiled_calls(path) == 1


# get_logconfig_dict and get_paste_config.

LOGGING_INI = """\
[app:main]
use = call:myapp.web:main

[loggers]
keys = root, app

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_app]
level = %(C2C_TEST_APP_LEVEL)s
handlers =
qualname = myapp
propagate = 1

[handler_console]
class = StreamHandler
kwargs = {"stream": "ext://sys.stdout"}
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)s [%(name)s] %(message)s
"""


@pytest.fixture
def logging_ini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("C2C_TEST_APP_LEVEL", "INFO")
    monkeypatch.delenv(pyramid_logging.LoggingSettings.declaration("config").env, raising=False)
    path = tmp_path / "logging.ini"
    path.write_text(LOGGING_INI, encoding="utf-8")
    return path


def test_get_logconfig_dict_builds_the_ini_s_logging(logging_ini: Path) -> None:
    assert c2cwsgiutils.get_logconfig_dict(str(logging_ini)) == {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": ["console"]},
        "loggers": {"myapp": {"level": "INFO", "propagate": True}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "level": "NOTSET",
                "formatter": "generic",
            }
        },
        "formatters": {
            "generic": {
                "format": "%(levelname)s [%(name)s] %(message)s",
                "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
                "class": "logging.Formatter",
            }
        },
    }


def test_the_logconfig_dict_configures_logging(logging_ini: Path) -> None:
    # dictConfig in a process of its own: here it would close pytest's handlers.
    code = textwrap.dedent(
        """
        import logging, logging.config, sys
        import c2cwsgiutils
        assert "c2cwsgiutils.loader" not in sys.modules
        logging.config.dictConfig(c2cwsgiutils.get_logconfig_dict(sys.argv[1]))
        logging.getLogger("myapp.views").info("kept")
        logging.getLogger("myapp").debug("below the level")
        logging.getLogger("other").info("below the root's level")
        logging.getLogger("other").warning("warned")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(logging_ini)],
        env=clean_environ({"C2C_TEST_APP_LEVEL": "INFO"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["INFO [myapp.views] kept", "WARNING [other] warned"]


def test_get_logconfig_dict_refuses_positional_handler_args(logging_ini: Path) -> None:
    logging_ini.write_text(
        LOGGING_INI.replace('kwargs = {"stream": "ext://sys.stdout"}', "args = (sys.stdout,)"),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"\[handler_console\].*kwargs"):
        c2cwsgiutils.get_logconfig_dict(str(logging_ini))


def test_get_logconfig_dict_without_logging_sections_is_the_default(
    logging_ini: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging_ini.write_text(LOGGING_INI.partition("[loggers]")[0], encoding="utf-8")
    default = pyramid_logging.default_config(pyramid_logging.LoggingSettings.resolve(None), "myapp")
    assert c2cwsgiutils.get_logconfig_dict(str(logging_ini)) == default
    logging_ini.write_text(LOGGING_INI, encoding="utf-8")
    monkeypatch.setenv(pyramid_logging.LoggingSettings.declaration("config").env, "default")
    assert c2cwsgiutils.get_logconfig_dict(str(logging_ini)) == default


@pytest.mark.parametrize(
    "argv",
    [
        ["gunicorn", "--paste", "/srv/app.ini", "--workers=2"],
        ["gunicorn", "--paster", "/srv/app.ini"],
        ["gunicorn", "--workers=2", "--paste=/srv/app.ini"],
        ["gunicorn", "--paster=/srv/app.ini"],
    ],
)
def test_get_paste_config_reads_gunicorn_s_command_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert c2cwsgiutils.get_paste_config() == "/srv/app.ini"


@pytest.mark.parametrize("argv", [["gunicorn", "--workers=2"], ["gunicorn", "--paste"]])
def test_get_paste_config_falls_back_to_c2cwsgiutils_config(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setenv("C2CWSGIUTILS_CONFIG", "/etc/app.ini")
    assert c2cwsgiutils.get_paste_config() == "/etc/app.ini"
    monkeypatch.delenv("C2CWSGIUTILS_CONFIG")
    assert c2cwsgiutils.get_paste_config() == wsgi_app.config_file() == "/app/production.ini"
