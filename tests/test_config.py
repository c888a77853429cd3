import pytest

from c2cwsgiutils import config


def test_environment_wins_over_ini() -> None:
    value = config.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={"C2C_X": "env"})
    assert value == "env"


def test_ini_wins_over_default() -> None:
    assert config.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={}) == "ini"


def test_default_when_neither_is_set() -> None:
    assert config.get_str({}, "C2C_X", "c2c.x", "default", environ={}) == "default"


def test_empty_environment_variable_counts_as_unset() -> None:
    assert config.get_str({"c2c.x": "ini"}, "C2C_X", "c2c.x", "default", environ={"C2C_X": ""}) == "ini"


def test_reads_os_environ_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_X", "from-os")
    assert config.get_str(None, "C2C_X", "c2c.x", "default") == "from-os"


@pytest.mark.parametrize("raw", ["true", "YES", "on", "1", " True "])
def test_bool_accepts_true_spellings(raw: str) -> None:
    assert config.get_bool(None, "C2C_FLAG", "c2c.flag", False, environ={"C2C_FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["false", "No", "OFF", "0"])
def test_bool_accepts_false_spellings(raw: str) -> None:
    assert config.get_bool(None, "C2C_FLAG", "c2c.flag", True, environ={"C2C_FLAG": raw}) is False


def test_bool_rejects_other_values_naming_the_variable() -> None:
    with pytest.raises(config.SettingError, match="environment variable C2C_FLAG='maybe': expected one of"):
        config.get_bool(None, "C2C_FLAG", "c2c.flag", False, environ={"C2C_FLAG": "maybe"})


def test_bad_ini_value_names_the_ini_key() -> None:
    with pytest.raises(config.SettingError, match=r"ini key c2c\.flag='2'"):
        config.get_bool({"c2c.flag": "2"}, "C2C_FLAG", "c2c.flag", False, environ={})


def test_typed_value_in_settings_is_kept() -> None:
    assert config.get_bool({"c2c.flag": True}, "C2C_FLAG", "c2c.flag", False, environ={}) is True


def test_int_parses_whole_numbers() -> None:
    assert config.get_int(None, "C2C_N", None, 1, environ={"C2C_N": " 42 "}) == 42


def test_int_rejects_decimals() -> None:
    with pytest.raises(config.SettingError, match=r"C2C_N='4\.5': expected a whole number"):
        config.get_int(None, "C2C_N", None, 1, environ={"C2C_N": "4.5"})


def test_int_enforces_its_minimum() -> None:
    with pytest.raises(config.SettingError, match="C2C_N='0': must be at least 1"):
        config.get_int(None, "C2C_N", None, 1, environ={"C2C_N": "0"}, minimum=1)


def test_float_rejects_words() -> None:
    with pytest.raises(config.SettingError, match="C2C_F='fast': expected a number"):
        config.get_float(None, "C2C_F", None, 1.0, environ={"C2C_F": "fast"})


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30", 30.0), ("1.5s", 1.5), ("250ms", 0.25), ("2m", 120.0), ("1h", 3600.0)]
)
def test_duration_units(raw: str, seconds: float) -> None:
    assert config.get_duration(None, "C2C_D", None, 0.0, environ={"C2C_D": raw}) == seconds


def test_duration_rejects_unknown_units() -> None:
    with pytest.raises(config.SettingError, match="C2C_D='3 days': expected a duration such as 30"):
        config.get_duration(None, "C2C_D", None, 0.0, environ={"C2C_D": "3 days"})


def test_base_path_defaults_to_c2c() -> None:
    assert config.base_path({}, environ={}) == "/c2c"


def test_base_path_from_ini() -> None:
    assert config.base_path({"c2c.base_path": "/ops"}, environ={}) == "/ops"


def test_base_path_environment_wins() -> None:
    assert config.base_path({"c2c.base_path": "/ops"}, environ={"C2C_BASE_PATH": "/env"}) == "/env"


@pytest.mark.parametrize(("raw", "normalised"), [("ops/", "/ops"), ("/a/b/", "/a/b"), ("/", "")])
def test_base_path_is_normalised(raw: str, normalised: str) -> None:
    assert config.base_path({}, environ={"C2C_BASE_PATH": raw}) == normalised


def test_base_path_rejects_query_strings() -> None:
    with pytest.raises(config.SettingError, match=r"C2C_BASE_PATH='/c2c\?x=1'"):
        config.base_path({}, environ={"C2C_BASE_PATH": "/c2c?x=1"})


def test_development_is_off_by_default() -> None:
    assert config.development({}, environ={}) is False


def test_development_from_environment() -> None:
    assert config.development({}, environ={"DEVELOPMENT": "1"}) is True
