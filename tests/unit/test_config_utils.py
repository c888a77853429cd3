import dataclasses

import pytest

from c2cwsgiutils import config_utils
from c2cwsgiutils.errors import ErrorsSettings
from c2cwsgiutils.ops_views import OpsViewsSettings
from c2cwsgiutils.request_tracking import RequestTrackingSettings


def test_environment_wins_over_ini() -> None:
    value = config_utils.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={"C2C_X": "env"})
    assert value == "env"


def test_ini_wins_over_default() -> None:
    assert config_utils.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={}) == "ini"


def test_default_when_neither_is_set() -> None:
    assert config_utils.get_str({}, "C2C_X", "c2c.x", "default", environ={}) == "default"


def test_empty_environment_variable_counts_as_unset() -> None:
    assert config_utils.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={"C2C_X": ""}) == "ini"


def test_reads_os_environ_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_X", "from-os")
    assert config_utils.get_str(None, "C2C_X", "c2c.x", "default") == "from-os"


@pytest.mark.parametrize("raw", ["true", "YES", "on", "1", " True "])
def test_bool_accepts_true_spellings(raw: str) -> None:
    assert config_utils.get_bool(None, "C2C_FLAG", "c2c.flag", False, environ={"C2C_FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["false", "No", "OFF", "0"])
def test_bool_accepts_false_spellings(raw: str) -> None:
    assert config_utils.get_bool(None, "C2C_FLAG", "c2c.flag", True, environ={"C2C_FLAG": raw}) is False


def test_bool_rejects_other_values_naming_the_variable() -> None:
    with pytest.raises(
        config_utils.SettingError, match="environment variable C2C_FLAG='maybe': expected one of"
    ):
        config_utils.get_bool(None, "C2C_FLAG", "c2c.flag", False, environ={"C2C_FLAG": "maybe"})


def test_bad_ini_value_names_the_ini_key() -> None:
    with pytest.raises(config_utils.SettingError, match=r"ini key c2c\.flag='2'"):
        config_utils.get_bool({"c2c.flag": "2"}, "C2C_FLAG", "c2c.flag", False, environ={})


def test_typed_value_in_settings_is_kept() -> None:
    assert config_utils.get_bool({"c2c.flag": True}, "C2C_FLAG", "c2c.flag", False, environ={}) is True


def test_int_parses_whole_numbers() -> None:
    assert config_utils.get_int(None, "C2C_N", None, 1, environ={"C2C_N": " 42 "}) == 42


def test_int_rejects_decimals() -> None:
    with pytest.raises(config_utils.SettingError, match=r"C2C_N='4\.5': expected a whole number"):
        config_utils.get_int(None, "C2C_N", None, 1, environ={"C2C_N": "4.5"})


def test_int_enforces_its_minimum() -> None:
    with pytest.raises(config_utils.SettingError, match="C2C_N='0': must be at least 1"):
        config_utils.get_int(None, "C2C_N", None, 1, environ={"C2C_N": "0"}, minimum=1)


def test_float_rejects_words() -> None:
    with pytest.raises(config_utils.SettingError, match="C2C_F='fast': expected a number"):
        config_utils.get_float(None, "C2C_F", None, 1.0, environ={"C2C_F": "fast"})


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30", 30.0), ("1.5s", 1.5), ("250ms", 0.25), ("2m", 120.0), ("1h", 3600.0)]
)
def test_duration_units(raw: str, seconds: float) -> None:
    assert config_utils.get_duration(None, "C2C_D", None, 0.0, environ={"C2C_D": raw}) == seconds


def test_duration_rejects_unknown_units() -> None:
    with pytest.raises(config_utils.SettingError, match="C2C_D='3 days': expected a duration such as 30"):
        config_utils.get_duration(None, "C2C_D", None, 0.0, environ={"C2C_D": "3 days"})


def base_path(settings: dict[str, str], environ: dict[str, str]) -> str:
    return OpsViewsSettings.resolve(settings, environ).base_path


def test_base_path_defaults_to_c2c() -> None:
    assert base_path({}, environ={}) == "/c2c"


def test_base_path_from_ini() -> None:
    assert base_path({"c2c.base_path": "/ops"}, environ={}) == "/ops"


def test_base_path_environment_wins() -> None:
    assert base_path({"c2c.base_path": "/ops"}, environ={"C2C_BASE_PATH": "/env"}) == "/env"


@pytest.mark.parametrize(("raw", "normalised"), [("ops/", "/ops"), ("/a/b/", "/a/b"), ("/", "")])
def test_base_path_is_normalised(raw: str, normalised: str) -> None:
    assert base_path({}, environ={"C2C_BASE_PATH": raw}) == normalised


def test_base_path_rejects_query_strings() -> None:
    with pytest.raises(config_utils.SettingError, match=r"C2C_BASE_PATH='/c2c\?x=1'"):
        base_path({}, environ={"C2C_BASE_PATH": "/c2c?x=1"})


@pytest.mark.parametrize("raw", ["/c2c/{name}", "/{x}", "/a}"])
def test_base_path_rejects_route_placeholders(raw: str) -> None:
    with pytest.raises(config_utils.SettingError, match="expected a URL path"):
        base_path({}, environ={"C2C_BASE_PATH": raw})


def test_development_is_off_by_default() -> None:
    assert ErrorsSettings.resolve({}, environ={}).development is False


def test_development_from_environment() -> None:
    assert ErrorsSettings.resolve({}, environ={"DEVELOPMENT": "1"}).development is True


def test_group_resolves_every_declared_setting() -> None:
    settings = RequestTrackingSettings.resolve(
        {"c2c.request_id_header": "X-Trace"}, environ={"C2C_REQUESTS_REQUEST_ID": "off"}
    )
    assert settings == RequestTrackingSettings(request_id_header="X-Trace", requests_request_id=False)


def test_group_is_frozen() -> None:
    settings = ErrorsSettings.resolve({}, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.development = True  # type: ignore[misc]


def test_group_names_the_bad_setting() -> None:
    with pytest.raises(config_utils.SettingError, match=r"ini key c2c\.development='sometimes'"):
        ErrorsSettings.resolve({"c2c.development": "sometimes"}, environ={})


def test_source_says_where_a_value_comes_from() -> None:
    declaration = OpsViewsSettings.declaration("base_path")
    assert declaration.source({}, {}) == "default"
    assert declaration.source({"c2c.base_path": "/x"}, {}) == "ini key c2c.base_path"
    assert declaration.source({"c2c.base_path": "/x"}, {"C2C_BASE_PATH": "/y"}) == (
        "environment variable C2C_BASE_PATH"
    )


def test_original_names_env_or_settings() -> None:
    assert config_utils.env_or_settings({"a.b": "ini"}, "C2C_TEST_UNSET_X", "a.b", "d") == "ini"
    assert config_utils.env_or_settings({}, "C2C_TEST_UNSET_X", "a.b", 5, int) == 5


def test_original_names_config_bool() -> None:
    assert config_utils.config_bool("yes") is True
    assert config_utils.config_bool(None) is False
