"""The Prometheus backend of the metrics: ``{C2C_BASE_PATH}/metrics``, or a port of its own.

Under gunicorn every worker is a process of its own, so the metrics use ``prometheus_client``'s
multiprocess mode: each worker writes its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR``, and whoever answers a scrape reads them all. ``c2cwsgiutils_run``
creates and empties that directory before gunicorn starts (:func:`prepare_multiprocess_directory`),
the gunicorn configuration's ``child_exit`` hook marks dead workers
(:func:`mark_process_dead`), and with ``C2C_PROMETHEUS_PORT`` its ``when_ready`` hook serves the
metrics from the gunicorn master (:func:`serve_from_master`).

Importing this module does not import ``prometheus_client`` (extra ``prometheus``).
"""

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import socketserver
import sys
import tempfile
import threading
import urllib.parse
import wsgiref.simple_server
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import extras
from c2cwsgiutils.config_utils import SettingsGroup, int_at_least, parse_bool, setting
from c2cwsgiutils.metrics.prometheus_merge import MultiprocessReader
from c2cwsgiutils.rate_limited_warning import RateLimitedWarning
from c2cwsgiutils.stats import Backend, Key, Tags

LOG = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus reads (our names are classic ones: the body is the same)."""
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
_WARN = RateLimitedWarning(source="c2cwsgiutils prometheus")
MAX_METRICS = 1000
"""Metric names (and label sets) the API may create per process; more are dropped with a warning."""


def _prefix(raw: str) -> str:
    if raw and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", raw):
        raise ValueError("expected letters, digits and underscores, not starting with a digit")
    return raw


@dataclasses.dataclass(frozen=True)
class PrometheusSettings(SettingsGroup):
    """The Prometheus backend."""

    TITLE = "Prometheus"

    view: bool = setting(
        "C2C_PROMETHEUS",
        "c2c.prometheus",
        False,
        "Switch the Prometheus backend on, with the metrics of every worker at `{C2C_BASE_PATH}/metrics`.",
        parse=parse_bool,
    )
    secret: str | None = setting(
        "C2C_PROMETHEUS_SECRET",
        "c2c.prometheus_secret",
        None,
        "If set, `{C2C_BASE_PATH}/metrics` and the port of `C2C_PROMETHEUS_PORT` ask for it "
        "(`X-API-Key` header or `secret` parameter).",
        secret=True,
    )
    port: int | None = setting(
        "C2C_PROMETHEUS_PORT",
        None,
        None,
        "Switch the Prometheus backend on, with the metrics served on this port by the gunicorn "
        "master (on every address), apart from the app.",
        parse=int_at_least(1),
    )
    prefix: str = setting(
        "C2C_PROMETHEUS_PREFIX",
        "c2c.prometheus_prefix",
        "c2cwsgiutils_",
        "Prefix of the name of every Prometheus metric the toolkit and `c2cwsgiutils.stats` make.",
        parse=_prefix,
    )

    @property
    def on(self) -> bool:
        """Tell whether the backend is on."""
        return self.view or self.port is not None


def build_metric_name(postfix: str) -> str:
    """Return ``postfix`` behind the toolkit's metric prefix (``C2C_PROMETHEUS_PREFIX``), as upstream does.

    For an app's own collectors, named like the toolkit's. The prefix is read from the
    environment only (no ini at hand), as upstream does: ``c2cwsgiutils_`` when unset or empty.
    """
    prefix: str = PrometheusSettings.declaration("prefix").resolve(None)
    return prefix + postfix


def metric_name(prefix: str, key: Key, suffix: str) -> str:
    """Return the Prometheus name of a key: the prefix, the parts joined by ``_``, the unit suffix."""
    name = prefix + "_".join(_NAME_UNSAFE.sub("_", part) for part in key)
    if name[:1].isdigit():
        name = "_" + name
    return name if name.endswith(suffix) else name + suffix


def label_name(name: str) -> str:
    """Return a valid label name (``__`` names are Prometheus's own)."""
    label = _LABEL_UNSAFE.sub("_", name).lstrip("_") or "tag"
    return "_" + label if label[0].isdigit() else label


class PrometheusBackend(Backend):
    """Histograms for timers, counters and gauges, written to the multiprocess directory when set."""

    def __init__(self, prefix: str = "c2cwsgiutils_") -> None:
        client = extras.require("prometheus_client", "prometheus", "C2C_PROMETHEUS")
        self.client = client
        self.prefix = prefix
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multiprocess mode the values live in files, read by a fresh registry at each scrape.
        self.registry = client.CollectorRegistry(auto_describe=True)
        self._register = None if self.multiprocess else self.registry
        self._lock = threading.Lock()
        self._metrics: dict[tuple[str, str], tuple[Any, tuple[str, ...]]] = {}
        self._refused: set[str] = set()
        self._children: dict[tuple[str, Key, Any], Any] = {}
        self._warn_lock = threading.Lock()
        self._request_children: dict[Any, Any] = {}
        self._render_children: dict[Any, Any] = {}
        self._query_children: dict[Any, Any] = {}
        self._outgoing_children: dict[Any, Any] = {}
        self._reader: MultiprocessReader | None = None
        self._process_registry: Any = None
        labels = ("route", "method", "status")
        self.requests = client.Histogram(
            f"{prefix}request_duration_seconds",
            "Time to answer a request, rendering included, by route, method and status.",
            labels,
            registry=self._register,
        )
        self.renders = client.Histogram(
            f"{prefix}render_duration_seconds",
            "Time to render a view's result, by route, method and status.",
            labels,
            registry=self._register,
        )
        self.queries = client.Histogram(
            f"{prefix}sql_duration_seconds",
            "Time to run an SQL query, by normalised query.",
            ("query",),
            registry=self._register,
        )
        self.outgoing_calls = client.Histogram(
            f"{prefix}outgoing_request_duration_seconds",
            "Time of an outgoing requests call, by host, method and status (or timeout, error).",
            ("host", "method", "status"),
            registry=self._register,
        )

    def _metric(self, kind: str, key: Key, tags: Tags) -> Any:
        cache_key = (kind, key, tuple(sorted(tags.items())) if tags else None)
        child = self._children.get(cache_key)
        if child is None:
            child = self._new_metric(kind, key, tags)
            if child is not None and len(self._children) < 10 * MAX_METRICS:
                self._children[cache_key] = child
        return child

    def _new_metric(self, kind: str, key: Key, tags: Tags) -> Any:
        suffix = {"histogram": "_seconds", "counter": "_total", "gauge": ""}[kind]
        name = metric_name(self.prefix, key, suffix)
        labels = tuple(sorted(label_name(tag) for tag in tags)) if tags else ()
        found = self._metrics.get((kind, name))
        if found is None:
            with self._lock:
                found = self._metrics.get((kind, name))
                if found is None:
                    if len(self._metrics) >= MAX_METRICS:
                        self._refuse(name, f"more than {MAX_METRICS} metrics")
                        return None
                    documentation = f"c2cwsgiutils.stats {kind} {'/'.join(key)}"
                    if kind == "histogram":
                        metric = self.client.Histogram(name, documentation, labels, registry=self._register)
                    elif kind == "counter":
                        # The client adds _total to a counter's name itself.
                        metric = self.client.Counter(
                            name.removesuffix("_total"), documentation, labels, registry=self._register
                        )
                    else:
                        metric = self.client.Gauge(
                            name,
                            documentation,
                            labels,
                            registry=self._register,
                            multiprocess_mode="mostrecent",
                        )
                    found = self._metrics[(kind, name)] = (metric, labels)
        metric, known = found
        if known != labels:
            self._refuse(name, f"labels {list(labels)} instead of {list(known)}")
            return None
        if not labels:
            return metric
        assert tags is not None  # noqa: S101 (labels come from them)
        return metric.labels(**{label_name(tag): str(value) for tag, value in tags.items()})

    def _refuse(self, name: str, why: str) -> None:
        with self._warn_lock:
            if name in self._refused:
                return
            self._refused.add(name)
        _WARN(f"metric {name} dropped: {why}", kind=name)

    def timer(self, key: Key, seconds: float, tags: Tags = None) -> None:
        """Observe the duration in the key's histogram (``<key>_seconds``)."""
        metric = self._metric("histogram", key, tags)
        if metric is not None:
            metric.observe(seconds)

    def gauge(self, key: Key, value: float, tags: Tags = None) -> None:
        """Set the key's gauge (the last value set, whichever worker set it)."""
        metric = self._metric("gauge", key, tags)
        if metric is not None:
            metric.set(value)

    def counter(self, key: Key, increment: float, tags: Tags = None) -> None:
        """Add to the key's counter (``<key>_total``)."""
        metric = self._metric("counter", key, tags)
        if metric is not None:
            metric.inc(increment)

    # The automatic metrics keep their label children: ``labels()`` checks and locks at each call.

    @staticmethod
    def _child(metric: Any, cache: dict[Any, Any], key: tuple[Any, ...], labels: tuple[str, ...]) -> Any:
        child = cache.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(cache) < 10 * MAX_METRICS:
                cache[key] = child
        return child

    def request(self, method: str, route: str, status: int, seconds: float, render: float | None) -> None:
        """Observe the request (and its rendering) in the histograms labelled by route, method, status."""
        key = (route, method, status)
        child = self._request_children.get(key) or self._child(
            self.requests, self._request_children, key, (route, method, str(status))
        )
        child.observe(seconds)
        if render is not None:
            child = self._render_children.get(key) or self._child(
                self.renders, self._render_children, key, (route, method, str(status))
            )
            child.observe(render)

    def sql(self, query: str, seconds: float) -> None:
        """Observe the query's duration, labelled by its normalised text."""
        self._child(self.queries, self._query_children, (query,), (query,)).observe(seconds)

    def outgoing(self, host: str, method: str, status: str, seconds: float) -> None:
        """Observe an outgoing call's duration, labelled by host, method and status."""
        labels = (host, method, status)
        self._child(self.outgoing_calls, self._outgoing_children, labels, labels).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """Return the metrics of every worker (or of this process) in the text format, and its type."""
        client = self.client
        if self.multiprocess:
            # The workers' files through our reader (prometheus_client's own merge costs ~1 s of
            # CPU for 8 workers x 50 routes), the processes' metrics through prometheus_client.
            if self._reader is None:
                self._reader = MultiprocessReader(os.environ[MULTIPROC_ENV])
            if self._process_registry is None:
                self._process_registry = client.CollectorRegistry()
                add_process_collectors(self._process_registry)
            merged = self._reader.text().encode("utf-8")
            return merged + client.generate_latest(self._process_registry), TEXT_FORMAT
        registry = self.registry
        if not getattr(registry, "_c2c_process_collectors", False):
            add_process_collectors(registry)
            registry._c2c_process_collectors = True
        return client.generate_latest(registry), TEXT_FORMAT


class _ProcessesCollector:
    """The process collector's metrics (CPU, memory, files) of each gunicorn process, labelled by pid."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids

    def collect(self) -> Iterable[Any]:
        client = extras.require("prometheus_client", "prometheus", "C2C_PROMETHEUS")
        families: dict[str, Any] = {}
        for pid in self.pids():
            collector = client.ProcessCollector(pid=lambda pid=pid: pid, registry=None)
            for family in collector.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = client.Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    merged.samples.append(sample._replace(labels={**sample.labels, "pid": str(pid)}))
        return list(families.values())


class MemoryMapCollector:
    """Gauges of the memory maps of the gunicorn master and workers (``/proc/<pid>/smaps``).

    Upstream's collector, for ``prometheus_client.REGISTRY.register(MemoryMapCollector("rss"))``:
    ``<prefix>process_smap_<memory_type>_bytes{pid, name}``, one series per process and mapped
    file (``name`` is its path, ``""`` for anonymous memory), those with a PSS above zero.
    ``memory_type`` is ``pss`` (the default), ``rss`` or ``size``. ``pids`` names the processes;
    by default those of :func:`gunicorn_pids` at each scrape (this process outside gunicorn).
    A process that ended is skipped; one that cannot be read costs a rate-limited warning.
    """

    def __init__(self, memory_type: str = "pss", pids: Iterable[int | str] | None = None) -> None:
        from c2cwsgiutils.metrics import memory_maps  # noqa: PLC0415

        if memory_type not in memory_maps.KINDS:
            raise ValueError(f"memory_type must be one of {memory_maps.KINDS}, not {memory_type!r}")
        self.memory_type = memory_type
        self.pids = None if pids is None else [str(pid) for pid in pids]
        self._default_pids: Callable[[], list[int]] = gunicorn_pids

    def collect(self) -> Iterable[Any]:
        """Return the gauge family, read now (never raises: a scrape must not fail for it)."""
        core = extras.require("prometheus_client.core", "prometheus", "MemoryMapCollector")
        from c2cwsgiutils.metrics import memory_maps  # noqa: PLC0415

        family = core.GaugeMetricFamily(
            build_metric_name(f"process_smap_{self.memory_type}"),
            f"Memory of each mapped file of the process ({self.memory_type.upper()} in /proc/<pid>/smaps).",
            labels=["pid", "name"],
            unit="bytes",
        )
        pids = self.pids if self.pids is not None else [str(pid) for pid in self._default_pids()]
        for pid in pids:
            try:
                maps = memory_maps.read_memory_maps(pid)
            except memory_maps.ProcessGoneError:
                continue
            except (OSError, ValueError) as error:
                _WARN(f"cannot read the memory maps of process {pid}: {error}", kind="smaps")
                continue
            for name, sizes in maps.items():
                if sizes["pss"] > 0:
                    family.add_metric([pid, name], sizes[self.memory_type] * 1024)
        return [family]


def master_and_workers() -> list[int]:
    """Return this process (a gunicorn master) and its children."""
    try:
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text(encoding="ascii")
    except OSError:
        children = ""
    return [os.getpid(), *(int(child) for child in children.split())]


def gunicorn_pids() -> list[int]:
    """Return this gunicorn's master and workers, when this is one of them; else this process."""
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return [os.getpid()]
    master = os.getppid() if _is_child_of_gunicorn() else os.getpid()
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text(encoding="ascii").split()
    except OSError:
        return [os.getpid()]
    return [master, *(int(child) for child in children)]


def _is_child_of_gunicorn() -> bool:
    try:
        command = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return False
    # gunicorn itself, or c2cwsgiutils_run, which runs gunicorn in its own process.
    return any(name in command for name in (b"gunicorn", b"c2cwsgiutils_run", b"c2cwsgiutils-run"))


def add_process_collectors(registry: Any) -> None:
    """Add the process metrics of every gunicorn process and the Python platform's to ``registry``."""
    client = extras.require("prometheus_client", "prometheus", "C2C_PROMETHEUS")
    registry.register(_ProcessesCollector(gunicorn_pids))
    client.PlatformCollector(registry=registry)


def metrics_view(request: Request) -> Response:
    """Answer a scrape: the metrics of every worker in the text exposition format."""
    from c2cwsgiutils import stats  # noqa: PLC0415

    backend = stats.backend(PrometheusBackend)
    if backend is None:
        return Response(status=404)
    body, content_type = backend.exposition()
    response = Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


# The gunicorn side: the multiprocess directory and the master's server.


def enabled(environ: Mapping[str, str], ini_settings: Mapping[str, Any] | None = None) -> bool:
    """Tell whether the backend is on, from the environment and the app's ini settings."""
    try:
        return PrometheusSettings.resolve(ini_settings, environ).on
    except ValueError:
        return False  # the app's include says what is wrong


def default_directory(master_pid: int) -> Path:
    """Return a gunicorn master's multiprocess directory: ``$TMPDIR/c2cwsgiutils-prometheus-<uid>/<pid>``."""
    return Path(tempfile.gettempdir()) / f"c2cwsgiutils-prometheus-{os.getuid()}" / str(master_pid)


def prepare_multiprocess_directory(environ: Mapping[str, str], master_pid: int) -> dict[str, str]:
    """Create or empty the multiprocess directory; return the environment gunicorn needs for it.

    ``PROMETHEUS_MULTIPROC_DIR`` if set (its ``*.db`` files are removed), else
    :func:`default_directory` (whose siblings of masters that are gone are removed).
    """
    given = environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*.db"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return {MULTIPROC_ENV: str(directory)}
    directory = default_directory(master_pid)
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        for sibling in directory.parent.iterdir():
            if sibling.name.isdigit() and sibling != directory and not Path(f"/proc/{sibling.name}").exists():
                shutil.rmtree(sibling, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    return {MULTIPROC_ENV: str(directory)}


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's ``child_exit``); its counters and histograms stay."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    multiprocess = extras.require("prometheus_client.multiprocess", "prometheus", "C2C_PROMETHEUS")
    multiprocess.mark_process_dead(pid)


def serve_from_master(port: int, secret: str | None, registry: Any = None, memory_maps: bool = False) -> None:
    """Serve the metrics of every worker on ``port`` from this process (the gunicorn master).

    On every address, for a scraper in another container; with ``secret``, only to a request
    that gives it (``X-API-Key`` header or ``secret`` parameter), as ``{C2C_BASE_PATH}/metrics``.
    The collectors of ``registry``, when given, are served too (ours are added to it); with
    ``memory_maps``, the PSS of each mapped file of every process (as upstream's :func:`start`: a
    series per process and file, so not by default). A process forked later closes its copy of
    the listening socket (:func:`cleanup`).
    """
    client = extras.require("prometheus_client", "prometheus", "C2C_PROMETHEUS_PORT")
    if registry is None:
        registry = client.CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        registry.register(MultiprocessReader(os.environ[MULTIPROC_ENV]))
    registry.register(_ProcessesCollector(master_and_workers))
    if memory_maps:
        memory = MemoryMapCollector("pss")
        memory._default_pids = master_and_workers
        registry.register(memory)
    client.PlatformCollector(registry=registry)
    app = client.make_wsgi_app(registry)
    server = wsgiref.simple_server.make_server(
        "", port, app if secret is None else _guarded(app, secret), _ThreadingServer, _QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="c2cwsgiutils-prometheus", daemon=True).start()
    if not _served:
        os.register_at_fork(after_in_child=cleanup)
    _served.append((os.getpid(), server))


# The master's metrics servers, with the pid that started each: a forked worker closes its copies.
_served: list[tuple[int, socketserver.TCPServer]] = []


def start(registry: Any = None) -> None:
    """Serve the metrics on ``C2C_PROMETHEUS_PORT`` from this process (upstream 6.1's name).

    For an app's own gunicorn configuration file, in its ``on_starting`` hook, as c2cgeoportal's
    does; the configuration of ``c2cwsgiutils_run`` serves them itself (``when_ready``). Without
    ``C2C_PROMETHEUS_PORT``, nothing. The image sets ``PROMETHEUS_MULTIPROC_DIR``; without it,
    the multiprocess directory is prepared here, so that the workers forked next write there,
    unless ``prometheus_client`` was imported already (it reads the variable on import: the
    configuration file must then not import it before this call).
    """
    port = PrometheusSettings.declaration("port").resolve(None)
    if port is None:
        return
    if not os.environ.get(MULTIPROC_ENV):
        if "prometheus_client" in sys.modules:
            LOG.warning(
                "%s is not set and prometheus_client is imported already: the workers' metrics "
                "will not reach the port; set it in the environment",
                MULTIPROC_ENV,
            )
        else:
            os.environ.update(prepare_multiprocess_directory(os.environ, os.getpid()))
    secret = PrometheusSettings.declaration("secret").resolve(None)
    serve_from_master(port, secret, registry, memory_maps=True)  # upstream's port has them


def cleanup() -> None:
    """In a process just forked (gunicorn's ``post_fork``): close the master's metrics sockets it inherited.

    Upstream 6.1's name. It also runs by itself at every fork; the broadcasts, Redis and Sentry
    clients start afresh in a forked process without being told.
    """
    for pid, server in _served:
        if pid != os.getpid():
            server.socket.close()
    _served[:] = [(pid, server) for pid, server in _served if pid == os.getpid()]


class _ThreadingServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a scrape every few seconds would fill the log."""


def _guarded(app: Any, secret: str) -> Any:
    """Wrap a WSGI app so that it answers only requests that give ``secret``."""
    from c2cwsgiutils.auth import secrets_equal  # noqa: PLC0415 (the master only needs it here)

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        given = environ.get("HTTP_X_API_KEY")
        if given is None:
            given = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("secret", [None])[0]
        if given is None or not secrets_equal(given, secret):
            start_response("403 Forbidden", [("Content-Type", "application/json")])
            return [b'{"status": 403, "message": "missing or wrong secret"}']
        return app(environ, start_response)

    return guarded


def app_settings(config_file: str) -> dict[str, Any]:
    """Return the settings of the ini file's app section, or ``{}`` when it has none of its own."""
    from c2cwsgiutils import loader  # noqa: PLC0415 (only the master needs it)

    try:
        return dict(loader.get_loader(config_file).app_context().config())
    except Exception:  # a missing file, an app section that is a pipeline: no settings of its own
        return {}


def prepare_for_run(environ: Mapping[str, str], config_file: str, master_pid: int) -> dict[str, str]:
    """For ``c2cwsgiutils_run``: the multiprocess directory's environment when the backend is on, else ``{}``.

    The backend is on by the environment or by the app section of the ini file.
    """
    if not enabled(environ, app_settings(config_file)):
        return {}
    return prepare_multiprocess_directory(environ, master_pid)


def includeme(config: Configurator) -> None:
    """Include the metrics feature, which switches this backend on when ``C2C_PROMETHEUS`` says so.

    Upstream's include subscribed the broadcast that gathers the workers' metrics; ours need none.
    """
    # By name: the metrics feature imports this module.
    config.include("c2cwsgiutils.stats_pyramid")
