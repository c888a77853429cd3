"""CEE records fed to a real rsyslog (unprivileged, on a free UDP port) that parses every one."""

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from c2cwsgiutils import pyramid_logging
from c2cwsgiutils.acceptance.server import free_port

pytestmark = [pytest.mark.rsyslog]

RSYSLOG_CONF = """
global(workDirectory="{workdir}" maxMessageSize="64k")
module(load="imudp")
module(load="mmjsonparse")
input(type="imudp" address="127.0.0.1" port="{port}")
template(name="parsed" type="list") {{
  constant(value="{{\\"host\\":\\"") property(name="hostname")
  constant(value="\\",\\"tag\\":\\"") property(name="programname")
  constant(value="\\",\\"severity\\":\\"") property(name="syslogseverity")
  constant(value="\\",\\"facility\\":\\"") property(name="syslogfacility-text")
  constant(value="\\",\\"data\\":") property(name="$!all-json")
  constant(value="}}\\n")
}}
template(name="raw" type="list") {{ property(name="rawmsg") constant(value="\\n") }}
action(type="mmjsonparse")
if $parsesuccess == "OK" then {{
  action(type="omfile" file="{workdir}/parsed.log" template="parsed")
}} else {{
  action(type="omfile" file="{workdir}/failed.log" template="raw")
}}
"""


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real rsyslogd with mmjsonparse, writing what it parsed as JSON lines."""
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(rsyslogd).exists():
        pytest.fail("rsyslogd is needed: apt-get install rsyslog (.ci/run installs it)", pytrace=False)
    port = free_port()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(workdir=tmp_path, port=port), encoding="utf-8")
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    log = tmp_path / "rsyslogd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 10
    while f":{port:04X} " not in Path("/proc/net/udp").read_text(encoding="ascii"):
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        assert time.monotonic() < deadline, "rsyslogd did not open its UDP port"
        time.sleep(0.05)
    yield port, tmp_path
    process.terminate()
    process.wait(10)


def wait_for_lines(path: Path, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def test_rsyslog_parses_every_record(rsyslog: tuple[int, Path]) -> None:
    port, workdir = rsyslog
    handler = pyramid_logging.PyramidCeeSysLogHandler(("127.0.0.1", port), facility="local1", ident="c2ctest")
    logger = logging.getLogger("c2cwsgiutils_test_rsyslog")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.info("plain")
        logger.warning('unicode: caf\u00e9 \u2603 "quoted" \\ back\nslash', extra={"count": 3})
        try:
            raise KeyError("missing")
        except KeyError:
            logger.exception("with a traceback")
        logger.error("huge " + "x" * 100_000)
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    records = wait_for_lines(workdir / "parsed.log", 4)
    assert not (workdir / "failed.log").exists(), (workdir / "failed.log").read_text(encoding="utf-8")
    assert [record["data"]["short_message"][:9] for record in records] == [
        "plain",
        "unicode: ",
        "with a tr",
        "huge xxxx",
    ]
    assert {(record["tag"], record["facility"]) for record in records} == {("c2ctest", "local1")}
    assert [record["severity"] for record in records] == ["6", "4", "3", "3"]
    assert records[1]["data"]["count"] == 3
    assert "KeyError: 'missing'" in records[2]["data"]["full_message"]
    assert records[3]["data"]["truncated"] > 100_000
