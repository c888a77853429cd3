"""What the benchmarks share: alternating rounds, result rows and their table, servers, wrk.

Every measurement is a baseline and a candidate measured in the same run, in alternating rounds
(baseline first in even rounds, candidate first in odd ones) so that the noise of a shared
machine hits both; the figure kept is the median over rounds.
"""

import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from c2cwsgiutils.acceptance.server import clean_environ, console_script, free_port

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


def alternate(baseline: Callable[[], T], candidate: Callable[[], T], rounds: int) -> tuple[list[T], list[T]]:
    """Run both ``rounds`` times, alternating which goes first; return each one's results."""
    results: tuple[list[T], list[T]] = ([], [])
    functions = (baseline, candidate)
    for round_number in range(rounds):
        for index in (0, 1) if round_number % 2 == 0 else (1, 0):
            results[index].append(functions[index]())
    return results


@dataclasses.dataclass
class Row:
    """One line of the results: a figure of the candidate against the baseline's, and its target."""

    section: str
    name: str
    unit: str
    baseline: float | None
    candidate: float | None
    baseline_label: str = ""
    candidate_label: str = ""
    # "ratio" (candidate / baseline), "added" (candidate - baseline) or "value" (the candidate alone).
    compare: str = "ratio"
    # A target on the compared figure: (">=" or "<=", number); None: shown without a target.
    target: tuple[str, float] | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Return candidate / baseline, when both are known."""
        if self.baseline is None or self.candidate is None or self.baseline == 0:
            return None
        return self.candidate / self.baseline

    @property
    def added(self) -> float | None:
        """Return candidate - baseline, when both are known."""
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline

    @property
    def figure(self) -> float | None:
        """Return the figure the target is about."""
        return {"ratio": self.ratio, "added": self.added, "value": self.candidate}[self.compare]

    @property
    def met(self) -> bool | None:
        """Tell whether the target is met (None: no target, or no figure)."""
        figure = self.figure
        if self.target is None or figure is None:
            return None
        operator, limit = self.target
        return figure >= limit if operator == ">=" else figure <= limit

    def result_text(self) -> str:
        """Return the compared figure as shown in the table."""
        figure = self.figure
        if figure is None:
            return self.note or "n/a"
        if self.compare == "ratio":
            return f"{figure:.2f}x"
        if self.compare == "added":
            return f"{figure:+.{_digits(figure)}f} {self.unit}"
        return f"{figure:.{_digits(figure)}f} {self.unit}"

    def target_text(self) -> str:
        """Return the target as shown in the table (with whether it is met)."""
        if self.target is None:
            return ""
        operator, limit = self.target
        unit = "x" if self.compare == "ratio" else f" {self.unit}"
        mark = {True: "met", False: "MISSED", None: ""}[self.met]
        return f"{operator} {limit:g}{unit} {mark}".strip()

    def as_json(self) -> dict[str, Any]:
        """Return the row for results.json: the ratio under ``ratio``, the difference under ``added``."""
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_label": self.baseline_label,
            "candidate": self.candidate,
            "candidate_label": self.candidate_label,
            "ratio": self.ratio,
            "added": self.added,
            "compare": self.compare,
            "target": None if self.target is None else f"{self.target[0]} {self.target[1]:g}",
            "met": self.met,
            "note": self.note,
        }


def _digits(value: float) -> int:
    return 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2


def _number(value: float | None, label: str) -> str:
    if value is None:
        return label or "n/a"
    text = f"{value:,.{_digits(value)}f}"
    return f"{text} ({label})" if label else text


COLUMNS = ("Section", "Measurement", "Baseline", "Candidate", "Result", "Target")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Return the cells of each row, in :data:`COLUMNS`' order."""
    return [
        (
            row.section,
            f"{row.name} ({row.unit})",
            _number(row.baseline, row.baseline_label),
            _number(row.candidate, row.candidate_label),
            row.result_text(),
            row.target_text(),
        )
        for row in rows
    ]


def text_table(rows: Sequence[Row]) -> str:
    """Return the rows as a plain-text table for the terminal."""
    cells = [COLUMNS, *table_cells(rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def markdown_table(rows: Sequence[Row]) -> str:
    """Return the rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in table_cells(rows)
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Return what the figures depend on: CPUs, Python, the load when the run started."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average": os.getloadavg(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


DESIGN_FIGURES = "## Design figures"
"""The heading of results.md's hand-written section, which a new run keeps."""


def write_results(rows: Sequence[Row], json_path: Path, markdown_path: Path, mode: str) -> dict[str, Any]:
    """Write the rows as JSON and Markdown; return the JSON document."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    document = {
        "date": now,
        "mode": mode,
        "machine": info,
        "rows": [row.as_json() for row in rows],
        # The same ratios, by name, for tools that compare runs.
        "ratios": {f"{row.section}: {row.name}": row.ratio for row in rows if row.ratio is not None},
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    header = (
        f"Measured {now}, {mode} mode, on {info['cpus']} CPUs ({info['cpu_model']}), Python "
        f"{info['python']}, load average at the start {info['load_average'][0]:.1f}.\n\n"
    )
    # The hand-written part (the design figures) stays below the table.
    kept = ""
    if markdown_path.exists():
        _, marker, rest = markdown_path.read_text(encoding="utf-8").partition(DESIGN_FIGURES)
        kept = "\n" + marker + rest if marker else ""
    markdown_path.write_text(header + markdown_table(rows) + "\n" + kept, encoding="utf-8")
    return document


# Servers.


def get_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """Return the status of ``GET path`` on the loopback port, or None if nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


@contextmanager
def udp_sink() -> Iterator[str]:
    """Yield the ``host:port`` of a UDP socket that nobody reads, for statsd in in-process measurements.

    A receiving thread in the measured process would take the GIL at each datagram and count in
    the figures; the kernel queues what is sent here, then drops it once the buffer is full.
    """
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sink.getsockname()[1]}"
    finally:
        sink.close()


@dataclasses.dataclass
class Server:
    """A server process on a loopback port; ``startup`` is the seconds from spawn to the first 200."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_path: str
    started: float
    startup: float = 0.0

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        """Return what the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) used so far by the server and its live children."""
        pids = [self.process.pid]
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in Path(f"/proc/{pids[0]}/task/{pids[0]}/children").read_text().split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def wait(self, timeout: float = 60) -> "Server":
        """Wait until ``ready_path`` answers 200 (polled every 5 ms); set ``startup``."""
        deadline = self.started + timeout
        while get_status(self.port, self.ready_path) != 200:
            if self.process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"server did not start ({self.process.returncode}):\n{self.log()[-3000:]}")
            time.sleep(0.005)
        if not self.startup:
            self.startup = time.perf_counter() - self.started
        return self


@contextmanager
def serve(
    command: Sequence[str], env: Mapping[str, str], port: int, ready_path: str, wait: bool = True
) -> Iterator[Server]:
    """Run ``command`` until the block ends; with ``wait``, from when ``ready_path`` answers 200."""
    with tempfile.TemporaryDirectory(prefix="bench-server-") as workdir:
        log_path = Path(workdir) / "server.log"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            # In a folder of its own: gunicorn puts its working directory first on sys.path, which
            # would make a server import the checkout it was started from.
            process = subprocess.Popen(
                command,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
            )
        try:
            server = Server(port, process, log_path, ready_path, started)
            yield server.wait() if wait else server
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def gunicorn(
    app: str,
    workers: int,
    threads: int,
    env: Mapping[str, str] | None = None,
    *,
    ready_path: str = "/hello",
    wait: bool = True,
) -> Any:
    """Serve ``app`` (an app factory of bench/apps.py, ``"bare()"``) with plain gunicorn, as documented."""
    port = free_port()
    command = [
        console_script("gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
        f"apps:{app}",
    ]
    environ = clean_environ({"PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1", **(env or {})})
    return serve(command, environ, port, ready_path, wait)


def c2cwsgiutils_run(
    ini: Path,
    workers: int,
    threads: int,
    env: Mapping[str, str] | None = None,
    *,
    ready_path: str = "/hello",
    wait: bool = True,
) -> Any:
    """Serve the ini file's app with ``c2cwsgiutils_run`` as shipped (its own gunicorn settings)."""
    port = free_port()
    pid_file = ini.parent / f"gunicorn-{port}.pid"
    environ = clean_environ(
        {
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
            "C2CWSGIUTILS_CONFIG": str(ini),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "C2CWSGIUTILS_PID_FILE": str(pid_file),
            **(env or {}),
        }
    )
    return serve([console_script("c2cwsgiutils_run")], environ, port, ready_path, wait)


# wrk.

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclasses.dataclass
class WrkResult:
    """Requests per second and latency percentiles (ms) of one wrk run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us_per_request: float = 0.0  # the server's CPU (all its processes) per request


def wrk(server: Server, path: str, seconds: float, connections: int) -> WrkResult:
    """Drive ``path`` with wrk (one thread, keep-alive) for ``seconds``; every answer must be a 2xx.

    Also counts the CPU time the server's processes spent meanwhile: on a busy machine the
    requests per second say how much CPU the server got, the CPU per request what it needed.
    """
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(seconds, 1):.0f}s", "--latency", server.url(path)]
    cpu_before = server.cpu_seconds()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(output)
    result.cpu_us_per_request = (server.cpu_seconds() - cpu_before) * 1e6 / max(result.requests, 1)
    return result


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's ``--latency`` report; refuse a run with errors or non-2xx answers."""
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s))\s*$", output, re.MULTILINE))
    if rate is None or total is None or "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"cannot read wrk's report:\n{output}")

    def milliseconds(text: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
        assert match is not None  # noqa: S101 (the pattern above)
        return float(match.group(1)) * _UNITS[match.group(2)]

    return WrkResult(
        float(rate.group(1)),
        milliseconds(percentiles["50"]),
        milliseconds(percentiles["99"]),
        int(total.group(1)),
    )


def python_child(*args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``python bench/<args>`` in a fresh interpreter (for process-wide state); return its stdout."""
    environ = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environ, cwd=HERE, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def median(values: Sequence[float]) -> float:
    """Return the median (named here so that the sections read alike)."""
    return statistics.median(values)
