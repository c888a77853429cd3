from pathlib import Path

import pytest

from c2cwsgiutils import config_utils
from c2cwsgiutils.server import gunicorn_settings


def cgroup_v2(tmp_path: Path, cpu_max: str) -> Path:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n", encoding="ascii")
    return tmp_path


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    assert gunicorn_settings.cgroup_cpu_limit(cgroup_v2(tmp_path, "150000 100000")) == 1.5


def test_cgroup_v2_without_quota(tmp_path: Path) -> None:
    assert gunicorn_settings.cgroup_cpu_limit(cgroup_v2(tmp_path, "max 100000")) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu,cpuacct").mkdir()
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("50000\n", encoding="ascii")
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n", encoding="ascii")
    assert gunicorn_settings.cgroup_cpu_limit(tmp_path) == 0.5


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n", encoding="ascii")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n", encoding="ascii")
    assert gunicorn_settings.cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files(tmp_path: Path) -> None:
    assert gunicorn_settings.cgroup_cpu_limit(tmp_path) is None


def test_cpus_are_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    assert gunicorn_settings.available_cpus(cgroup_v2(tmp_path, "50000 100000")) == 1


def test_cpus_follow_the_affinity_without_quota(tmp_path: Path) -> None:
    import os

    assert gunicorn_settings.available_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_default_workers_derive_from_cpus(tmp_path: Path) -> None:
    settings = gunicorn_settings.settings_from_environ({}, cgroup_v2(tmp_path, "100000 100000"))
    assert settings["workers"] == 3


def test_defaults(tmp_path: Path) -> None:
    settings = gunicorn_settings.settings_from_environ({}, tmp_path)
    assert settings["bind"] == [":8080"]
    assert settings["accesslog"] == "-"
    assert settings["pidfile"] == gunicorn_settings.DEFAULT_PID_FILE
    assert (settings["timeout"], settings["graceful_timeout"]) == (30, 30)


def test_environment_overrides(tmp_path: Path) -> None:
    environ = {
        "GUNICORN_BIND": "127.0.0.1:9000, unix:/tmp/s",
        "GUNICORN_WORKERS": "7",
        "GUNICORN_THREADS": "2",
        "GUNICORN_TIMEOUT": "60",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "GUNICORN_ACCESS_LOG": "off",
        "C2CWSGIUTILS_PID_FILE": "/run/app.pid",
    }
    settings = gunicorn_settings.settings_from_environ(environ, tmp_path)
    assert settings["bind"] == ["127.0.0.1:9000", "unix:/tmp/s"]
    assert (settings["workers"], settings["threads"]) == (7, 2)
    assert (settings["timeout"], settings["graceful_timeout"]) == (60, 5)
    assert settings["accesslog"] is None
    assert settings["pidfile"] == "/run/app.pid"


def test_bad_worker_count_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(config_utils.SettingError, match="GUNICORN_WORKERS='0': must be at least 1"):
        gunicorn_settings.settings_from_environ({"GUNICORN_WORKERS": "0"}, tmp_path)


def test_every_setting_is_a_gunicorn_setting(tmp_path: Path) -> None:
    from gunicorn.config import KNOWN_SETTINGS

    known = {setting.name for setting in KNOWN_SETTINGS}
    assert set(gunicorn_settings.settings_from_environ({}, tmp_path)) <= known
