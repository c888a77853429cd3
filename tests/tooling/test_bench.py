"""The benchmark harness (bench/run.py) in its fast mode, so that it cannot rot.

Nothing is asserted about speed: the figures of a few seconds on a shared machine mean nothing.
Only that every section ran and produced its rows, and that the results are well-formed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.wrk, pytest.mark.server, pytest.mark.postgres]

BENCH = Path(__file__).parents[2] / "bench" / "run.py"
SECTIONS = ("1. throughput", "2. in-process", "3. API", "4. health check", "5. Prometheus", "6. start-up")


def test_fast_mode_produces_every_row(tmp_path: Path, postgres_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--fast", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TEST_POSTGRES_URL": postgres_url},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    rows = document["rows"]
    names = {row["section"] for row in rows}
    for section in SECTIONS:
        assert any(name.startswith(section) for name in names), (section, names)
    # Every measured row has both figures and its ratio; the image is measured or said "not built".
    for row in rows:
        if row["section"] == "7. image":
            assert row["ratio"] is not None or row["note"] == "not built"
            continue
        assert isinstance(row["baseline"], float), row
        assert isinstance(row["candidate"], float), row
        assert isinstance(row["ratio"], float), row
        assert row["met"] in (True, False, None)
    assert document["ratios"]
    assert "| Section |" in (tmp_path / "results.md").read_text(encoding="utf-8")
    # The table is printed too.
    assert "requests/s" in result.stdout
