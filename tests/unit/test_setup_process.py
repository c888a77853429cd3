"""c2cwsgiutils.setup_process: the toolkit in a process that serves no requests, in real subprocesses."""

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from c2cwsgiutils import loader, setup_process
from c2cwsgiutils.acceptance.server import clean_environ
from c2cwsgiutils.acceptance.udp import UdpReceiver
from testing.fixtures import EXAMPLE_APP_INI

REPO = Path(__file__).parents[2]


def run_job(tmp_path: Path, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script file, in a clean environment where no default ini file exists."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        env=clean_environ({"C2CWSGIUTILS_CONFIG": str(tmp_path / "absent.ini"), **(env or {})}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_calling_the_module_sets_up_json_logging_from_the_environment(tmp_path: Path) -> None:
    result = run_job(
        tmp_path,
        """
        import logging

        import c2cwsgiutils

        c2cwsgiutils.setup_process()
        logging.getLogger(__name__).info("hello from the job", extra={"job": "nightly"})
        logging.getLogger("other").info("below OTHER_LOG_LEVEL")
        """,
        env={"LOG_TYPE": "json"},
    )
    [record] = records(result.stdout)
    assert record["short_message"] == "hello from the job"
    assert (record["level_name"], record["job"]) == ("INFO", "nightly")


def test_init_applies_the_ini_logging_and_its_settings(tmp_path: Path) -> None:
    """The example app's ini: its JSON handler (LOG_TYPE=json) and its ``c2c.*`` settings."""
    ini = tmp_path / "job.ini"
    ini.write_text(
        EXAMPLE_APP_INI.read_text(encoding="utf-8").replace(
            "c2c.base_path = /c2c", "c2c.base_path = /c2c\nc2c.statsd_prefix = from_the_ini"
        ),
        encoding="utf-8",
    )
    with UdpReceiver() as statsd:
        result = run_job(
            tmp_path,
            f"""
            import logging

            import c2cwsgiutils.setup_process
            from c2cwsgiutils import stats

            c2cwsgiutils.setup_process.init("c2c://{ini}")
            stats.increment_counter(["job", "done"])
            logging.getLogger("c2cwsgiutils_app.job").info("counted")
            """,
            env={"LOG_TYPE": "json", "STATSD_ADDRESS": statsd.address},
        )
        assert statsd.wait_for(lambda data: b"from_the_ini.job.done:1|c" in data)
    assert [record["short_message"] for record in records(result.stdout)] == ["counted"]


def test_a_second_init_changes_nothing(tmp_path: Path) -> None:
    result = run_job(
        tmp_path,
        """
        import logging

        import c2cwsgiutils
        from c2cwsgiutils import setup_process

        c2cwsgiutils.setup_process()
        setup_process.init()
        c2cwsgiutils.setup_process()
        print(len(logging.getLogger().handlers))
        """,
        env={"LOG_TYPE": "json"},
    )
    assert result.stdout.splitlines()[-1] == "1"


def test_importing_sets_nothing_up_nor_imports_pyramid_early(tmp_path: Path) -> None:
    result = run_job(
        tmp_path,
        """
        import logging
        import sys

        import c2cwsgiutils

        print("pyramid" in sys.modules)
        import c2cwsgiutils.setup_process

        print(logging.getLogger().handlers, callable(c2cwsgiutils.setup_process))
        """,
        env={"LOG_TYPE": "json"},
    )
    assert result.stdout == "False\n[] True\n"


def test_a_named_ini_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(loader.ConfigFileError, match=r"missing\.ini: no such file$"):
        setup_process.init(f"c2c://{tmp_path}/missing.ini")


def test_fill_arguments_adds_the_ini_and_its_variables() -> None:
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser, default_config_uri="c2c:///etc/app.ini")
    assert vars(parser.parse_args([])) == {"config_uri": "c2c:///etc/app.ini", "config_vars": ()}
    args = parser.parse_args(["other.ini", "a=1", "b=2"])
    assert (args.config_uri, args.config_vars) == ("other.ini", ["a=1", "b=2"])


def test_fill_arguments_as_options_defaults_to_c2cwsgiutils_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2CWSGIUTILS_CONFIG", "/srv/app.ini")
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser, use_attribute=True)
    assert parser.parse_args([]).config_uri == "c2c:///srv/app.ini"
    args = parser.parse_args(["--config-uri", "x.ini", "--config-vars", "a=1"])
    assert (args.config_uri, args.config_vars) == ("x.ini", ["a=1"])


def test_bootstrap_application_from_options_loads_the_example_app(tmp_path: Path) -> None:
    """The app, its settings and a request, with the config variables offered to the ini."""
    result = run_job(
        tmp_path,
        f"""
        import argparse

        import c2cwsgiutils.setup_process

        parser = argparse.ArgumentParser()
        c2cwsgiutils.setup_process.fill_arguments(parser)
        options = parser.parse_args(["c2c://{EXAMPLE_APP_INI}", "LOG_TYPE=json"])
        env = c2cwsgiutils.setup_process.bootstrap_application_from_options(options)
        try:
            print("RESULT", env["request"].route_path("ping"), env["registry"].settings["c2c.base_path"])
            print("RESULT", type(env["app"]).__name__, env["root"] is not None)
        finally:
            env["closer"]()
        """,
        env={"SQLALCHEMY_URL": f"sqlite:///{tmp_path}/app.sqlite"},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    assert lines == ["RESULT /api/ping /c2c", "RESULT Router True"]
    # LOG_TYPE=json came from the command line: the app's start-up record is JSON.
    assert any(
        record["short_message"].startswith("c2cwsgiutils_app ready") for record in records(result.stdout)
    )
