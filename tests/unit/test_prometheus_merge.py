"""c2cwsgiutils.metrics.prometheus_merge: the same merged metrics as prometheus_client's own collector.

Each test writes multiprocess files as several "workers" (one process, with prometheus_client's
file naming by process id switched between pids) and compares our text with the one of
``MultiProcessCollector`` + ``generate_latest``, parsed by prometheus_client's parser.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

pytest.importorskip("prometheus_client")

import prometheus_client
from prometheus_client import multiprocess, values
from prometheus_client.parser import text_string_to_metric_families

from c2cwsgiutils.metrics import prometheus_merge
from c2cwsgiutils.metrics.prometheus_merge import MultiprocessReader, go_float


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    real = values.ValueClass
    yield tmp_path
    values.ValueClass = real


def as_worker(pid: int) -> None:
    """Make the values created from now on be written to the files of ``pid``."""
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]


def parsed(text: str) -> dict[str, Any]:
    """Families by name; values rounded (sums of floats in another file order differ in the last bit)."""
    return {
        family.name: (
            family.type,
            family.documentation,
            sorted(
                (sample.name, tuple(sorted(sample.labels.items())), float(f"{sample.value:.12g}"))
                for sample in family.samples
            ),
        )
        for family in text_string_to_metric_families(text)
    }


def theirs(directory: Path) -> str:
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return prometheus_client.generate_latest(registry).decode()


def write_workers(worker_pids: range, round_: int = 0) -> None:
    for pid in worker_pids:
        as_worker(pid)
        registry = prometheus_client.CollectorRegistry()
        histogram = prometheus_client.Histogram(
            "req_seconds", 'A "histogram"\\ with\nescapes', ("route", "status"), registry=registry
        )
        counter = prometheus_client.Counter("calls", "A counter", ("kind",), registry=registry)
        plain = prometheus_client.Counter("plain", "No labels", registry=registry)
        for route in range(5):
            histogram.labels(f'route "{route}"\\', "200").observe(0.01 * (route + 1) * pid % 7)
            histogram.labels(f"route_{route}", "404").observe(3.5 + round_)
        counter.labels("a").inc(pid)
        counter.labels("b\nc").inc(0.5)
        plain.inc(1e7)
        for mode in ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum"):
            gauge = prometheus_client.Gauge(
                f"gauge_{mode}",
                f"mode {mode}",
                ("x",),
                registry=registry,
                multiprocess_mode=cast(Any, mode),
            )
            gauge.labels("1").set(pid * (-1) ** pid + round_)
        for mode in ("mostrecent", "livemostrecent"):
            gauge = prometheus_client.Gauge(
                f"gauge_{mode}", f"mode {mode}", (), registry=registry, multiprocess_mode=cast(Any, mode)
            )
            gauge.set(pid + round_)


def test_same_metrics_as_prometheus_client(directory: Path) -> None:
    write_workers(range(101, 105))
    reader = MultiprocessReader(str(directory))
    assert parsed(reader.text()) == parsed(theirs(directory))
    assert not reader.fallback  # the comparison is of the reader, not of prometheus_client with itself


def test_values_and_new_series_written_after_a_scrape_are_read(directory: Path) -> None:
    """The second scrape reads the remembered layouts: new values, new keys and new files."""
    write_workers(range(101, 103))
    reader = MultiprocessReader(str(directory))
    reader.text()
    write_workers(range(101, 104), round_=1)
    as_worker(101)
    extra = prometheus_client.Counter(
        "late", "Made after the first scrape", ("k",), registry=prometheus_client.CollectorRegistry()
    )
    extra.labels("v").inc(2)
    assert parsed(reader.text()) == parsed(theirs(directory))


def test_a_file_written_again_from_scratch_is_parsed_again(directory: Path) -> None:
    write_workers(range(101, 103))
    reader = MultiprocessReader(str(directory))
    reader.text()
    for path in directory.glob("*.db"):
        path.unlink()
    as_worker(101)
    other = prometheus_client.Counter(
        "other", "Another", ("k",), registry=prometheus_client.CollectorRegistry()
    )
    other.labels("v").inc(3)
    assert parsed(reader.text()) == parsed(theirs(directory))
    assert "calls_total" not in reader.text()


def test_dead_workers_live_gauges_are_dropped(directory: Path) -> None:
    write_workers(range(101, 104))
    reader = MultiprocessReader(str(directory))
    reader.text()
    multiprocess.mark_process_dead(102, str(directory))  # type: ignore[no-untyped-call]
    assert parsed(reader.text()) == parsed(theirs(directory))


def test_collect_gives_the_same_as_text(directory: Path) -> None:
    """The master's port serves the reader through a prometheus_client registry."""
    write_workers(range(101, 104))
    registry = prometheus_client.CollectorRegistry()
    registry.register(MultiprocessReader(str(directory)))
    assert parsed(prometheus_client.generate_latest(registry).decode()) == parsed(theirs(directory))


@pytest.mark.parametrize(
    "value", [0.0, 1.0, 0.005, 2.5, 1e7, 123456789.0, -3.5, float("inf"), float("-inf"), 1e-9]
)
def test_floats_are_written_as_prometheus_client_does(value: float) -> None:
    assert go_float(value) == prometheus_client.utils.floatToGoString(value)  # type: ignore[no-untyped-call]


def test_nan() -> None:
    assert go_float(float("nan")) == "NaN"


@pytest.mark.parametrize(
    ("version", "known"),
    [
        ("0.20.0", True),
        ("0.26.0", True),
        ("0.26.3", True),
        ("0.19.0", False),
        ("0.27.0", False),
        ("1.0", False),
    ],
)
def test_the_reader_is_used_with_the_tested_versions_only(version: str, known: bool) -> None:
    assert prometheus_merge.format_is_known(version) is known


def test_the_installed_version_is_a_tested_one() -> None:
    """pyproject.toml's bounds on prometheus_client are the tested versions."""
    assert prometheus_merge.format_is_known()


def test_another_version_is_merged_by_prometheus_client(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_workers(range(101, 103))
    monkeypatch.setattr(prometheus_merge, "format_is_known", lambda version=None: False)
    reader = MultiprocessReader(str(directory))
    assert reader.fallback
    assert reader.text() == theirs(directory)
    registry = prometheus_client.CollectorRegistry()
    registry.register(reader)
    assert prometheus_client.generate_latest(registry).decode() == theirs(directory)


def test_a_file_it_does_not_understand_is_left_to_prometheus_client(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key that is not prometheus_client's JSON: the scrape is the library's, error included."""
    write_workers(range(101, 103))
    key = b"not the JSON of a key"
    entry = len(key).to_bytes(4, "little") + key + b" " * (8 - (len(key) + 4) % 8) + bytes(16)
    (directory / "counter_999.db").write_bytes((8 + len(entry)).to_bytes(4, "little") + bytes(4) + entry)
    with pytest.raises(Exception) as expected:  # noqa: PT011 (whatever prometheus_client raises)
        theirs(directory)
    reader = MultiprocessReader(str(directory))
    with pytest.raises(type(expected.value)):
        reader.text()
    assert reader.fallback
    assert "prometheus_client merges them" in capsys.readouterr().err
