"""The scrape of ``prometheus_client``'s multiprocess files, merged and written in the text format.

``prometheus_client.multiprocess.MultiProcessCollector`` parses every entry of every worker's file
at every scrape (a JSON key per value), builds a ``Sample`` per value, then formats each merged
sample: with 8 workers x 50 routes (~40,000 values) that is close to a second of CPU. The files
are append-only (a value's position never changes), so this reader parses each file's entries once,
remembers where the values are, and at the next scrape reads them all with one ``struct`` call;
merged series are rendered from text prepared once per key. The files, the merge rules (sums for
counters and histograms, the gauges' multiprocess modes) and the text are prometheus_client's;
``tests/unit/test_prometheus_merge.py`` compares both on the same files.

The file format is prometheus_client's own, not a public API: this reader is used only with the
versions it was compared with (:data:`TESTED_VERSIONS`, ``make test-prometheus-versions``). With
any other version, or a file it cannot make sense of, the scrape is prometheus_client's own
``MultiProcessCollector``: slower, never wrong.

Importing this module does not import ``prometheus_client`` (extra ``prometheus``).
"""

import glob
import importlib.metadata
import json
import math
import os
import struct
import threading
from collections.abc import Iterable
from typing import Any

from c2cwsgiutils.rate_limited_warning import RateLimitedWarning

TESTED_VERSIONS = ("0.20", "0.21", "0.22", "0.23", "0.24", "0.25", "0.26")
"""The prometheus_client series whose files and merge this reader was compared with."""
_INT = struct.Struct("<i")
_MAX_CACHED_KEYS = 200_000
"""Parsed keys kept between scrapes; beyond that the cache starts again (it only costs parsing)."""
_WARN = RateLimitedWarning(source="c2cwsgiutils prometheus")


class FormatError(Exception):
    """A multiprocess file this reader does not understand."""


def format_is_known(version: str | None = None) -> bool:
    """Tell whether this reader was tested with prometheus_client ``version`` (default: the installed one)."""
    if version is None:
        try:
            version = importlib.metadata.version("prometheus_client")
        except importlib.metadata.PackageNotFoundError:
            return False
    return ".".join(version.split(".")[:2]) in TESTED_VERSIONS


def go_float(value: float) -> str:
    """Write a float as prometheus_client (and Go) do: ``+Inf``, ``NaN``, ``1e+06``."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels_text(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels))
    return "{" + inner + "}" if inner else ""


class _Series:
    """One merged sample: its name, labels and the start of its line, made once."""

    __slots__ = ("labels", "line", "sample")

    def __init__(self, sample: str, labels: tuple[tuple[str, str], ...]) -> None:
        self.sample = sample
        self.labels = labels
        self.line = f"{sample}{_labels_text(labels)} "


class _Key(_Series):
    """One parsed file key: its family and sample; a bucket also knows its series' ``_count``."""

    __slots__ = ("count", "family", "help", "le")

    def __init__(self, raw: str) -> None:
        family, sample, labels, help_text = json.loads(raw)
        super().__init__(sample, tuple(sorted((k, str(v)) for k, v in labels.items())))
        self.family: str = family
        self.help: str = help_text
        le = labels.get("le") if sample.endswith("_bucket") else None
        self.le = float(le) if le is not None else None
        # A histogram's series is its label set without "le": its buckets, _count and _sum.
        self.count = (
            None
            if le is None
            else _Series(family + "_count", tuple(item for item in self.labels if item[0] != "le"))
        )


class _Layout:
    """Where one file's values are: its parsed keys in order and a struct reading all values."""

    __slots__ = ("check", "inode", "keys", "offsets", "reader", "used")

    def __init__(self, inode: int) -> None:
        self.inode = inode
        self.used = 8
        self.keys: list[_Key] = []
        self.offsets: list[int] = []  # of each value
        self.check = b""  # the first key's bytes: a file written again from scratch has others
        self.reader = struct.Struct("<")


class MultiprocessReader:
    """Read and merge a multiprocess directory; keeps the files' layouts between scrapes."""

    def __init__(self, path: str) -> None:
        self.path = path
        # prometheus_client's own collector, for a version or a file this reader does not know.
        self.fallback = not format_is_known()
        self._lock = threading.Lock()
        self._layouts: dict[str, _Layout] = {}
        self._keys: dict[bytes, _Key] = {}

    def _key(self, raw: bytes) -> _Key:
        key = self._keys.get(raw)
        if key is None:
            # Not the JSON of [family, sample, labels, help]: a format this reader does not know.
            try:
                key = self._keys[raw] = _Key(raw.decode("utf-8"))
            except (ValueError, TypeError, AttributeError) as error:
                raise FormatError(f"a key that is not one: {raw[:100]!r}") from error
        return key

    def _read(self, path: str) -> tuple[_Layout, tuple[float, ...]] | None:
        """Return the file's layout and its values (value and timestamp of each key, in turn)."""
        try:
            with open(path, "rb") as file:
                stat = os.fstat(file.fileno())
                head = file.read(8)
                if len(head) < 8:
                    return None
                used = _INT.unpack_from(head)[0]
                data = head + file.read(max(used - 8, 0))
        except FileNotFoundError:  # a dead worker's live gauges, removed since the glob
            return None
        layout = self._layouts.get(path)
        if (
            layout is None
            or layout.inode != stat.st_ino
            or used < layout.used
            or data[12 : 12 + len(layout.check)] != layout.check
        ):
            layout = self._layouts[path] = _Layout(stat.st_ino)
        if used > layout.used:
            self._parse(layout, data, used)
        return layout, layout.reader.unpack_from(data)

    def _parse(self, layout: _Layout, data: bytes, used: int) -> None:
        """Parse the entries appended since the last scrape (the mmap_dict format)."""
        pos = layout.used
        while pos < used:
            length = _INT.unpack_from(data, pos)[0]
            if length <= 0 or length + pos > used:
                raise FormatError(f"an entry of {length} bytes at {pos} of {used}")
            pos += 4
            if not layout.keys:
                layout.check = data[pos : pos + length]
            layout.keys.append(self._key(data[pos : pos + length]))
            pos += length + (8 - (length + 4) % 8)
            layout.offsets.append(pos)
            pos += 16
        layout.used = used
        parts = ["<"]
        previous = 0
        for offset in layout.offsets:
            parts.append(f"{offset - previous}xdd" if offset > previous else "dd")
            previous = offset + 16
        layout.reader = struct.Struct("".join(parts))

    def merge(self) -> dict[str, tuple[str, str, dict[_Series, float]]]:
        """Return each family: its type, help and merged samples (series to value).

        Histogram buckets come back cumulated, with their ``_count``, as prometheus_client does.
        """
        families: dict[str, tuple[str, str, dict[_Series, float]]] = {}
        # By histogram series (its _count): each bucket's key and summed value.
        buckets: dict[tuple[str, str], dict[float, list[Any]]] = {}
        counts: dict[tuple[str, str], _Series] = {}
        gauges: dict[tuple[str, Any], float] = {}
        with self._lock:
            if len(self._keys) > _MAX_CACHED_KEYS:
                # Between scrapes: a series is one key object in every file's layout.
                self._keys.clear()
                self._layouts.clear()
            for path in sorted(glob.glob(os.path.join(self.path, "*.db"))):
                parts = os.path.basename(path).split("_")
                typ = parts[0]
                found = self._read(path)
                if found is None:
                    continue
                layout, values = found
                if typ == "gauge":
                    self._gauges(
                        families=families,
                        recent=gauges,
                        layout=layout,
                        values=values,
                        mode=parts[1],
                        pid=parts[2][:-3],
                    )
                    continue
                self._sums(families, buckets, counts, layout, values[::2], typ=typ)
        for series, by_le in buckets.items():
            samples = families[series[0]][2]
            total = 0.0
            for le in sorted(by_le):
                key, value = by_le[le]
                total += value
                samples[key] = total
            samples[counts[series]] = total
        return families

    @staticmethod
    def _sums(
        families: dict[str, tuple[str, str, dict[_Series, float]]],
        buckets: dict[tuple[str, str], dict[float, list[Any]]],
        counts: dict[tuple[str, str], _Series],
        layout: _Layout,
        values: tuple[float, ...],
        *,
        typ: str,
    ) -> None:
        """Add a counter's, histogram's or summary's file to the sums (buckets apart, by series)."""
        for key, value in zip(layout.keys, values, strict=True):
            family = families.get(key.family)
            if family is None:
                family = families[key.family] = (typ, key.help, {})
            count = key.count
            if count is None:
                samples = family[2]
                samples[key] = samples.get(key, 0.0) + value
                continue
            # Series told apart by their _count's line (two _Series objects may be the same one).
            by_le = buckets.get((key.family, count.line))
            if by_le is None:
                by_le = buckets[(key.family, count.line)] = {}
                counts[(key.family, count.line)] = count
            bucket = by_le.get(key.le)  # type: ignore[arg-type]
            if bucket is None:
                by_le[key.le] = [key, value]  # type: ignore[index]
            else:
                bucket[1] += value

    @staticmethod
    def _gauges(
        *,
        families: dict[str, tuple[str, str, dict[_Series, float]]],
        recent: dict[tuple[str, Any], float],
        layout: _Layout,
        values: tuple[float, ...],
        mode: str,
        pid: str,
    ) -> None:
        """Merge a gauge file by its multiprocess mode (``all`` keeps a series per pid)."""
        mode = mode.removeprefix("live")
        for index, key in enumerate(layout.keys):
            value, timestamp = values[2 * index], values[2 * index + 1]
            family = families.get(key.family)
            if family is None:
                family = families[key.family] = ("gauge", key.help, {})
            samples = family[2]
            if mode == "all":
                samples[_Series(key.sample, tuple(sorted((*key.labels, ("pid", pid)))))] = value
                continue
            current = samples.get(key)
            if mode == "sum":
                samples[key] = (current or 0.0) + value
            elif mode == "min":
                samples[key] = value if current is None or value < current else current
            elif mode == "max":
                samples[key] = value if current is None or value > current else current
            elif timestamp > recent.get((key.family, key), 0.0):  # mostrecent
                samples[key] = value
                recent[(key.family, key)] = timestamp

    def _library_registry(self) -> Any:
        from prometheus_client import CollectorRegistry, multiprocess  # noqa: PLC0415 (extra "prometheus")

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.path)  # type: ignore[no-untyped-call]
        return registry

    def _merge_or_fall_back(self) -> dict[str, tuple[str, str, dict[_Series, float]]] | None:
        """Return the merge, or None when prometheus_client's own collector must do it."""
        if self.fallback:
            return None
        try:
            return self.merge()
        except (FormatError, struct.error) as error:
            self.fallback = True
            _WARN(f"multiprocess files in an unknown format ({error}): prometheus_client merges them")
            return None

    def text(self) -> str:
        """Return the merged metrics in the text exposition format."""
        merged = self._merge_or_fall_back()
        if merged is None:
            from prometheus_client import generate_latest  # noqa: PLC0415 (extra "prometheus")

            return generate_latest(self._library_registry()).decode("utf-8")
        lines: list[str] = []
        append = lines.append
        for name, (typ, help_text, samples) in merged.items():
            exposed = name + "_total" if typ == "counter" else name
            help_escaped = help_text.replace("\\", r"\\").replace("\n", r"\n")
            append(f"# HELP {exposed} {help_escaped}\n# TYPE {exposed} {typ}\n")
            for series, value in samples.items():
                # repr is the Go text of the usual values: integral ones and small decimals.
                text = repr(value) if 0 <= value < 1e6 else go_float(value)
                append(f"{series.line}{text}\n")
        return "".join(lines)

    def collect(self) -> Iterable[Any]:
        """Yield the merged families as prometheus_client metrics (for its registries and servers)."""
        from prometheus_client.metrics_core import Metric  # noqa: PLC0415 (extra "prometheus")

        merged = self._merge_or_fall_back()
        if merged is None:
            yield from self._library_registry().collect()
            return
        for name, (typ, help_text, samples) in merged.items():
            metric = Metric(name, help_text, typ)
            for series, value in samples.items():
                metric.add_sample(series.sample, dict(series.labels), value)
            yield metric
