"""A recording stand-in for the ``docker`` CLI, for tests of the Compose controller without an engine.

The test puts it first on PATH; it records its arguments (and the ``DOCKER_TAG`` it saw) and answers
what the test scripted, by ``docker compose`` subcommand (``ps`` answers can change from one call
to the next).
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

STANDIN = """\
#!{python}
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["STANDIN_RECORD"], "a") as record:
    record.write(json.dumps(args) + "\\n")
with open(os.environ["STANDIN_RECORD"] + ".env", "a") as record:
    record.write(json.dumps({{name: os.environ.get(name) for name in ("DOCKER_TAG",)}}) + "\\n")
rest = args[1:]
while rest and rest[0] in ("--file", "--project-name"):
    rest = rest[2:]
scenario = json.load(open(os.environ["STANDIN_SCENARIO"]))
answer = scenario.get(rest[0] if rest else "", {{}})
if isinstance(answer, list):  # one answer per call, the last one repeated
    counter = os.environ["STANDIN_SCENARIO"] + "." + rest[0]
    count = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(count + 1))
    answer = answer[min(count, len(answer) - 1)]
time.sleep(answer.get("sleep", 0))
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("code", 0))
"""


def ps(*containers: dict[str, Any]) -> dict[str, str]:
    """A ``docker compose ps --format json`` answer: one JSON object per line (Compose >= 2.21)."""
    return {"stdout": "".join(json.dumps(container) + "\n" for container in containers)}


def container(service: str, state: str = "running", health: str = "", exit_code: int = 0) -> dict[str, Any]:
    return {"Service": service, "State": state, "Health": health, "ExitCode": exit_code}


class Docker:
    """The stand-in ``docker`` on PATH, with what it was asked and what it answers."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        script = bin_dir / "docker"
        script.write_text(STANDIN.format(python=sys.executable), encoding="utf-8")
        script.chmod(0o755)
        self.record = directory / "record.jsonl"
        self.scenario_file = directory / "scenario.json"
        self.script(version={"stdout": "2.29.7\n"}, ps=ps(container("app", health="healthy")))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("STANDIN_RECORD", str(self.record))
        monkeypatch.setenv("STANDIN_SCENARIO", str(self.scenario_file))

    def script(self, **answers: Any) -> None:
        """Set the answers, by compose subcommand (``ps``, ``port``...); a list is one per call."""
        current = json.loads(self.scenario_file.read_text()) if self.scenario_file.exists() else {}
        self.scenario_file.write_text(json.dumps({**current, **answers}), encoding="utf-8")

    def calls(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines()]

    def environments(self) -> list[dict[str, str | None]]:
        """The recorded variables (``DOCKER_TAG``) each call saw, in the order of :meth:`calls`."""
        record = self.record.with_name(self.record.name + ".env")
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
