"""Upstream 6.1's smaller names (issue 23), called as c2cgeoportal 2.9 and tilecloud-chain 1.23 call them.

MemoryMapCollector reads real ``/proc/<pid>/smaps`` files (this process's and a child Python's);
the health check, renderers and loaders run in in-process apps; scripts' set-up runs in a child
Python where it configures the process.
"""

import argparse
import decimal
import gc
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import orjson
import plaster
import pytest
import webtest
from gunicorn.app.pasterapp import get_wsgi_app
from gunicorn.config import Config
from prometheus_client import CollectorRegistry, generate_latest
from pyramid.config import Configurator
from pyramid.paster import get_appsettings
from pyramid.renderers import JSON
from pyramid.request import Request

import c2cwsgiutils
from c2cwsgiutils import client_info, health_check, loader, prometheus, sentry, setup_process
from c2cwsgiutils.acceptance.server import clean_environ
from c2cwsgiutils.debug import dump_memory_maps, get_size
from c2cwsgiutils.pretty_json import _FastDumps
from tests.apps.upstream61 import SCHEME

REPO = Path(__file__).parents[2]
MB = 1024 * 1024


# prometheus.MemoryMapCollector and build_metric_name (tilecloud_chain/server.py:960-1015).


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    """A Python that holds 64 MiB of anonymous memory, touched, until told to end."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; b = bytearray(64 * 1024 * 1024); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    yield process
    process.communicate("", timeout=10)


def samples(collector: Any) -> list[Any]:
    return [sample for family in collector.collect() for sample in family.samples]


def test_memory_maps_of_a_child_show_its_anonymous_memory(child: subprocess.Popen[str]) -> None:
    collector = prometheus.MemoryMapCollector("rss", pids=[str(child.pid)])
    found = {sample.labels["name"]: sample.value for sample in samples(collector)}
    assert found[""] >= 64 * MB  # the bytearray: anonymous memory
    assert any(name.endswith((".so", ".so.6", "python3", "[heap]")) or "python" in name for name in found)


def test_memory_maps_name_and_labels_are_upstream_s(
    child: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("C2C_PROMETHEUS_PREFIX", raising=False)
    registry = CollectorRegistry()
    registry.register(prometheus.MemoryMapCollector(pids=[child.pid]))  # pss, the default
    text = generate_latest(registry).decode()
    assert "# TYPE c2cwsgiutils_process_smap_pss_bytes gauge" in text
    assert f'c2cwsgiutils_process_smap_pss_bytes{{name="",pid="{child.pid}"}}' in text


def test_memory_maps_size_is_at_least_rss(child: subprocess.Popen[str]) -> None:
    size = {s.labels["name"]: s.value for s in samples(prometheus.MemoryMapCollector("size", [child.pid]))}
    rss = {s.labels["name"]: s.value for s in samples(prometheus.MemoryMapCollector("rss", [child.pid]))}
    assert size.keys() == rss.keys()
    assert all(size[name] >= rss[name] for name in size)


def test_memory_maps_default_to_this_process_outside_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    pids = {sample.labels["pid"] for sample in samples(prometheus.MemoryMapCollector())}
    assert pids == {str(os.getpid())}


def test_a_process_that_ended_is_skipped_without_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    collector = prometheus.MemoryMapCollector(pids=[ended.stdout.strip(), os.getpid()])
    assert {sample.labels["pid"] for sample in samples(collector)} == {str(os.getpid())}
    assert "memory maps" not in capsys.readouterr().err


def test_an_unreadable_process_costs_a_warning_not_the_scrape(capsys: pytest.CaptureFixture[str]) -> None:
    collector = prometheus.MemoryMapCollector(pids=["../self"])  # not a process ID: refused
    registry = CollectorRegistry()
    registry.register(collector)
    assert "process_smap_pss_bytes" in generate_latest(registry).decode()
    assert "cannot read the memory maps of process ../self" in capsys.readouterr().err


def test_an_unknown_memory_type_is_refused() -> None:
    with pytest.raises(ValueError, match="memory_type"):
        prometheus.MemoryMapCollector("vss")


def test_dump_memory_maps_has_upstream_s_fields() -> None:
    maps = dump_memory_maps()
    assert maps
    assert all(entry["pss_kb"] > 0 for entry in maps)
    assert set(maps[0]) == {"name", "pss_kb", "rss_kb", "size_kb"}
    assert dump_memory_maps("999999999") == []


def test_build_metric_name_uses_the_default_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_PROMETHEUS_PREFIX", raising=False)
    assert prometheus.build_metric_name("python_resource") == "c2cwsgiutils_python_resource"


def test_build_metric_name_uses_c2c_prometheus_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_PROMETHEUS_PREFIX", "tiles_")
    assert prometheus.build_metric_name("python_resource") == "tiles_python_resource"
    registry = CollectorRegistry()
    registry.register(prometheus.MemoryMapCollector("rss", [os.getpid()]))
    assert "tiles_process_smap_rss_bytes{" in generate_latest(registry).decode()


def test_build_metric_name_takes_an_empty_prefix_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_PROMETHEUS_PREFIX", "")
    assert prometheus.build_metric_name("x") == "c2cwsgiutils_x"


# health_check.JsonCheckException (c2cgeoportal_geoportal/lib/checker.py:184).


def report_of(error: Exception, monkeypatch: pytest.MonkeyPatch, development: bool = False) -> dict[str, Any]:
    """Run one failing check in an in-process app; return the check's entry of the report."""
    monkeypatch.setenv("DEVELOPMENT", "1" if development else "0")
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    check = health_check.HealthCheck(config)

    def themes(request: Request) -> None:
        raise error

    check.add_custom_check(name="checker_themes", check_cb=themes, level=1)
    response = webtest.TestApp(config.make_wsgi_app()).get("/c2c/health_check", status=500)
    assert response.content_type == "application/json"
    failure: dict[str, Any] = response.json["failures"]["checker_themes"]
    return failure


def test_the_json_is_the_failure_s_result(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = {"desktop": ["layer 'roads' is missing"], "count": 1}
    failure = report_of(
        health_check.JsonCheckException("Interface 'desktop' has error in Theme.", errors), monkeypatch
    )
    assert failure["message"] == "Interface 'desktop' has error in Theme."
    assert failure["result"] == errors


def test_the_json_is_shown_in_development_too(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = report_of(health_check.JsonCheckException("bad", [1, 2]), monkeypatch, development=True)
    assert failure["result"] == [1, 2]
    assert "stacktrace" in failure


def test_the_json_s_strings_are_scrubbed_and_its_urls_masked_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the failure's message: a URL names an internal host, a map file, a user."""
    leaky = {"url": "https://user:hunter2@internal-wms.local/wms?map=/etc/a.map&secret=s3cr3t", "n": 1}
    failure = report_of(health_check.JsonCheckException("bad", leaky), monkeypatch)
    assert failure["result"] == {"url": "https://***", "n": 1}


def test_the_json_s_urls_are_shown_in_development_without_their_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leaky = {"url": "https://user:hunter2@example.com/wms?secret=s3cr3t&layer=a"}
    failure = report_of(health_check.JsonCheckException("bad", leaky), monkeypatch, development=True)
    shown = json.dumps(failure["result"])
    assert "hunter2" not in shown
    assert "s3cr3t" not in shown
    assert "example.com" in shown


def test_a_json_above_the_limit_is_left_out_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    big = ["x" * 1000] * (health_check.MAX_RESULT_BYTES // 1000 + 1)
    failure = report_of(health_check.JsonCheckException("bad", big), monkeypatch)
    assert "result" not in failure
    assert f"more than {health_check.MAX_RESULT_BYTES}" in failure["result_omitted"]
    assert failure["message"] == "bad"


def test_a_json_just_below_the_limit_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ["x" * 1000] * (health_check.MAX_RESULT_BYTES // 1010)
    assert len(orjson.dumps(data)) <= health_check.MAX_RESULT_BYTES
    assert report_of(health_check.JsonCheckException("bad", data), monkeypatch)["result"] == data


def test_a_json_that_cannot_be_encoded_is_left_out_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = report_of(health_check.JsonCheckException("bad", {"when": object()}), monkeypatch)
    assert "result" not in failure
    assert "cannot be encoded" in failure["result_omitted"]


def test_a_json_too_deep_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    deep: Any = []
    for _ in range(health_check.MAX_RESULT_DEPTH + 5):
        deep = [deep]
    assert "deeper" in report_of(health_check.JsonCheckException("bad", deep), monkeypatch)["result_omitted"]


def test_no_json_means_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = report_of(health_check.JsonCheckException("bad", None), monkeypatch)
    assert "result" not in failure
    assert "result_omitted" not in failure


def test_json_check_exception_has_upstream_s_attributes() -> None:
    error = health_check.JsonCheckException("the message", {"a": 1})
    assert (str(error), error.message, error.json, error.json_data()) == (
        "the message",
        "the message",
        {"a": 1},
        {"a": 1},
    )


# debug.get_size (c2cgeoportal_geoportal/lib/metrics.py:67, views/memory.py:73).


def test_get_size_counts_what_a_value_refers_to() -> None:
    text = "x" * 100_000
    assert get_size({"a": text}) >= sys.getsizeof(text) + sys.getsizeof({"a": text})


def test_get_size_counts_a_shared_object_once() -> None:
    text = "y" * 100_000
    assert get_size([text, text, text]) < 2 * sys.getsizeof(text)
    assert get_size([text, text]) == sys.getsizeof([text, text]) + sys.getsizeof(text)


def test_get_size_ends_on_cycles() -> None:
    node: dict[str, Any] = {"payload": "p" * 50_000}
    node["self"] = node
    other: dict[str, Any] = {"back": node}
    node["other"] = other
    size = get_size(node)
    assert sys.getsizeof("p" * 50_000) < size < 2 * sys.getsizeof("p" * 50_000)


def test_get_size_counts_neither_classes_modules_nor_functions() -> None:
    class Holder:
        pass

    holder = Holder()
    holder.module = json  # type: ignore[attr-defined]
    holder.function = test_get_size_ends_on_cycles  # type: ignore[attr-defined]
    assert get_size(Holder) == get_size(json) == get_size(test_get_size_ends_on_cycles) == 0
    # The module's and the function's sizes are not in the holder's: it stays small.
    assert get_size(holder) < 2000


def test_get_size_follows_instances_attributes() -> None:
    class Holder:
        def __init__(self) -> None:
            self.data = bytes(200_000)

    assert get_size(Holder()) > 200_000
    gc.collect()


# pretty_json._FastDumps (c2cgeoportal's tests/test_decimaljson.py) and the fast_json renderer.


def test_fast_dumps_as_c2cgeoportal_s_tests() -> None:
    fast_dumps = _FastDumps(False, False)
    value = {"str": "an str", "int": 1, "dec": decimal.Decimal("1.2")}
    assert json.loads(fast_dumps(value)) == {"int": 1, "dec": 1.2, "str": "an str"}
    assert _FastDumps(False, False)({"a": decimal.Decimal("3.3")}) == '{"a":3.3}'


def test_fast_dumps_keeps_decimals_exact_and_non_numbers_null() -> None:
    dumped = _FastDumps(False, False)(
        [decimal.Decimal("0.1000000000000000000000001"), decimal.Decimal("NaN"), decimal.Decimal("-Infinity")]
    )
    assert dumped == "[0.1000000000000000000000001,null,null]"


def test_fast_dumps_pretty_and_sorted() -> None:
    assert _FastDumps(True, True)({"b": 1, "a": "é/"}) == '{\n  "a": "é/",\n  "b": 1\n}'


def test_fast_dumps_uses_the_renderer_s_default_then_refuses() -> None:
    class Point:
        def __json__(self, request: Any) -> list[int]:
            return [1, 2]

    assert (
        _FastDumps(False, False)({"p": Point()}, default=lambda value: value.__json__(None)) == '{"p":[1,2]}'
    )
    with pytest.raises(TypeError):
        _FastDumps(False, False)({"p": Point()})


def test_fast_dumps_as_pyramid_s_serializer() -> None:
    render = JSON(serializer=_FastDumps(False, False))(None)
    assert render({"n": decimal.Decimal("2.50")}, {}) == '{"n":2.50}'


@pytest.fixture
def app(tmp_path: Path) -> webtest.TestApp:
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = call:tests.apps.upstream61:factory\n", encoding="utf-8")
    return webtest.TestApp(loader.load_app(str(ini)))


def test_the_fast_json_renderer_is_there_with_the_toolkit(app: webtest.TestApp) -> None:
    response = app.get("/amounts")
    assert response.content_type == "application/json"
    assert response.text == '{"amount":3.30,"path":"a/b","name":"é"}'


def test_the_json_renderer_stays_pyramid_s(app: webtest.TestApp) -> None:
    assert app.get("/plain").text == '{"a": 1}'


# get_config_defaults (the scaffold's gunicorn.conf.py:103) and the loader.


def test_get_config_defaults_is_the_loader_s_defaults() -> None:
    assert c2cwsgiutils.get_config_defaults() == loader.environ_defaults(os.environ)


def test_get_config_defaults_escape_percent_and_keep_both_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_VALUE", "50%off")
    monkeypatch.setenv("http_proxy", "http://lower")
    monkeypatch.setenv("HTTP_PROXY", "http://upper")
    monkeypatch.setenv("here", "not/here")
    defaults = c2cwsgiutils.get_config_defaults()
    assert defaults["A_VALUE"] == "50%%off"
    assert (defaults["http_proxy"], defaults["HTTP_PROXY"]) == ("http://lower", "http://upper")
    assert "here" not in defaults


def test_get_config_defaults_through_gunicorn_s_raw_paste_global_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scaffold's line, then gunicorn's own paste loading of a plain ini file."""
    monkeypatch.setenv("APP_TITLE", "100% tiles")
    monkeypatch.setenv("http_proxy", "http://lower")
    monkeypatch.setenv("HTTP_PROXY", "http://upper")
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\n"
        "title = %(APP_TITLE)s\nlower = %(http_proxy)s\nupper = %(HTTP_PROXY)s\n",
        encoding="utf-8",
    )
    raw_paste_global_conf = ["=".join(e) for e in c2cwsgiutils.get_config_defaults().items()]
    config = Config()
    config.set("raw_paste_global_conf", raw_paste_global_conf)
    app = get_wsgi_app(str(ini), defaults=config.paste_global_conf)
    settings = app.registry.settings
    assert (settings["title"], settings["lower"], settings["upper"]) == (
        "100% tiles",
        "http://lower",
        "http://upper",
    )


def test_importing_the_package_imports_no_loader(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import c2cwsgiutils
        assert "c2cwsgiutils.loader" not in sys.modules and "pyramid" not in sys.modules, sorted(sys.modules)
        assert c2cwsgiutils.get_config_defaults()["ONLY_HERE"] == "1"
        """
    )
    subprocess.run(
        [sys.executable, "-c", code], env=clean_environ({"ONLY_HERE": "1"}), cwd=REPO, check=True, timeout=60
    )


@pytest.fixture
def geo_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register tests.apps.upstream61:GeoLoader as the plaster scheme SCHEME, as a client's wheel does.

    A distribution's metadata on sys.path (what pip installs), read by plaster's entry point lookup.
    """
    dist = tmp_path / "site" / "upstream61_geo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: upstream61-geo\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n{SCHEME} = tests.apps.upstream61:GeoLoader\n"
            for group in ("plaster.loader_factory", "plaster.wsgi_loader_factory")
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("GEO_TITLE", "from the environment")
    ini = tmp_path / "geo.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\n"
        "title = %(GEO_TITLE)s\nsubclass = %(FROM_THE_SUBCLASS)s\n",
        encoding="utf-8",
    )
    return ini


def test_a_loader_subclass_completes_the_settings(geo_scheme: Path) -> None:
    subclass = plaster.get_loader(f"{SCHEME}://{geo_scheme}", protocols=["wsgi"])
    assert repr(subclass) == f'GeoLoader(uri="{SCHEME}://{geo_scheme}")'
    settings = subclass.get_wsgi_app_settings()
    assert settings["title"] == "from the environment"
    assert settings["available_locale_names"] == ["en", "fr"]


def test_pyramid_s_get_appsettings_goes_through_the_subclass(geo_scheme: Path) -> None:
    settings = get_appsettings(f"{SCHEME}://{geo_scheme}")
    assert (settings["title"], settings["subclass"]) == ("from the environment", "yes")
    assert settings["available_locale_names"] == ["en", "fr"]


def test_bootstrap_from_options_uses_the_scheme_s_loader(geo_scheme: Path) -> None:
    """c2cgeoportal's scripts: fill_arguments with keywords, then ["registry"].settings."""
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser, default_config_uri=f"{SCHEME}://{geo_scheme}", use_attribute=True)
    env = setup_process.bootstrap_application_from_options(parser.parse_args([]))
    try:
        settings = env["registry"].settings
        assert (settings["title"], settings["subclass"]) == ("from the environment", "yes")
    finally:
        env["closer"]()


def test_bootstrap_reads_a_plain_path_of_any_extension_as_an_ini(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plaster names /app/production.conf ``file+conf``: still a plain path, for our loader."""
    monkeypatch.setenv("GEO_TITLE", "from the environment")
    conf = tmp_path / "production.conf"
    conf.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\ntitle = %(GEO_TITLE)s\n", encoding="utf-8"
    )
    env = setup_process.bootstrap_application(str(conf))
    try:
        assert env["registry"].settings["title"] == "from the environment"
    finally:
        env["closer"]()


# setup_process: the clients' call forms.


def test_fill_arguments_positional_as_tilecloud_chain() -> None:
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser)  # tilecloud_chain/__init__.py:115
    options = parser.parse_args(["c2c://tiles.ini", "a=1", "b=2"])
    assert (options.config_uri, options.config_vars) == ("c2c://tiles.ini", ["a=1", "b=2"])


def test_fill_arguments_keywords_as_c2cgeoportal() -> None:
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser, default_config_uri="c2c://development.ini", use_attribute=True)
    assert parser.parse_args([]).config_uri == "c2c://development.ini"
    options = parser.parse_args(["--config-uri", "c2c://other.ini", "--config-vars", "a=1"])
    assert (options.config_uri, options.config_vars) == ("c2c://other.ini", ["a=1"])


def test_bootstrap_application_from_options_with_config_vars(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\nport = %(http_port)s\n", encoding="utf-8"
    )
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser)
    env = setup_process.bootstrap_application_from_options(
        parser.parse_args([f"c2c://{ini}", "http_port=8080"])
    )
    try:
        assert env["registry"].settings["port"] == "8080"
        assert env["request"].registry is env["registry"]
    finally:
        env["closer"]()


def test_bootstrap_application_positional_as_upstream(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\nport = %(http_port)s\n", encoding="utf-8"
    )
    env = setup_process.bootstrap_application(f"c2c://{ini}", {"http_port": "81"})
    try:
        assert env["registry"].settings["port"] == "81"
        assert webtest.TestApp(env["app"]).get("/amounts").json["path"] == "a/b"
    finally:
        env["closer"]()


def test_init_and_init_logging_take_a_config_uri_positionally(tmp_path: Path) -> None:
    """In a child Python: both configure the process's logging."""
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.upstream61:factory\nc2c.statsd_prefix = x\n", encoding="utf-8"
    )
    code = textwrap.dedent(
        f"""
        import c2cwsgiutils.setup_process as setup_process

        setup_process.init_logging("c2c://{ini}")
        setup_process.init("c2c://{ini}")
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environ({}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("done")


# sentry.filter_factory / filter_wsgi_app: `egg:c2cwsgiutils#sentry` in c2cgeoportal's pipeline.


def test_the_sentry_filter_is_the_app_itself_without_sentry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_URL", raising=False)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []

    assert sentry.filter_factory({}, unused="x")(app) is app


def test_the_filters_are_registered_under_upstream_s_entry_point_names() -> None:
    filters = {entry.name: entry.load() for entry in entry_points(group="paste.filter_factory")}
    assert filters["client_info"] is client_info.filter_factory
    assert filters["sentry"] is sentry.filter_factory
    for group in ("plaster.loader_factory", "plaster.wsgi_loader_factory"):
        schemes = {entry.name: entry.load() for entry in entry_points(group=group)}
        assert all(schemes[name] is loader.Loader for name in ("c2c", "c2c+ini", "c2c+egg")), group


# prometheus.start / cleanup: c2cgeoportal's gunicorn.conf.py (served: tests/test_stats_server.py).


def test_prometheus_start_without_a_port_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_PROMETHEUS_PORT", raising=False)
    monkeypatch.delenv(prometheus.MULTIPROC_ENV, raising=False)
    prometheus.start()
    prometheus.cleanup()
    assert prometheus.MULTIPROC_ENV not in os.environ
