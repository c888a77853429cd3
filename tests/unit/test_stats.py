"""The stats API, its in-memory and statsd backends, and the automatic metrics of a Pyramid app."""

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
import webtest
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.interfaces import ITweens
from pyramid.request import Request
from pyramid.tweens import EXCVIEW

import c2cwsgiutils.pyramid
from c2cwsgiutils import stats, stats_pyramid
from c2cwsgiutils.acceptance.udp import UdpReceiver

SERVER_TIMING = re.compile(
    r'total;dur=[0-9]+\.[0-9](, render;dur=[0-9]+\.[0-9])?(, sql;dur=[0-9]+\.[0-9];desc="[0-9]+ queries")?'
)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    stats_pyramid.reset()
    yield
    stats_pyramid.reset()


def make_app(settings: dict[str, str]) -> webtest.TestApp:
    config = Configurator(settings={"c2c.requests_request_id": "false", **settings})
    config.include(c2cwsgiutils.pyramid.includeme)
    config.add_route("ping", "/api/ping")
    config.add_view(lambda request: {"pong": True}, route_name="ping", renderer="json")
    config.add_route("forbidden", "/api/forbidden")

    def forbidden(request: Request) -> None:
        raise HTTPForbidden()

    config.add_view(forbidden, route_name="forbidden")
    config.add_route("boom", "/api/boom")

    def boom(request: Request) -> None:
        raise RuntimeError("boom")

    config.add_view(boom, route_name="boom")
    return webtest.TestApp(config.make_wsgi_app())


def memory_dump() -> dict[str, Any]:
    memory = stats.backend(stats.MemoryBackend)
    assert memory is not None
    return stats.merge([memory.dump()])


def test_without_backend_the_calls_do_nothing_and_no_tween_is_added() -> None:
    app = make_app({})
    assert stats.BACKENDS == []
    with stats.timer_context(["a", "b"]):
        pass
    stats.increment_counter(["a"])
    stats.set_gauge("a", 1)
    assert stats.timer("a").stop() >= 0
    tweens = app.app.registry.queryUtility(ITweens)
    assert stats_pyramid.TWEEN not in [name for name, _ in tweens.implicit()]
    assert "Server-Timing" not in app.get("/api/ping").headers


def test_a_key_is_a_list_or_the_parts_as_arguments() -> None:
    stats.add_backend(stats.MemoryBackend())
    with stats.timer_context(["sql", "read_hello"]):
        pass
    with stats.timer_context("sql", "read_hello"):
        pass
    timer = stats.timer()
    timer.stop(["export"], tags={"format": "csv"})
    stats.timer("done").stop()
    stats.increment_counter(["logins"], tags={"method": "oidc"})
    stats.increment_counter("logins", 2, tags={"method": "oidc"})
    stats.set_gauge(["queue", "length"], 42)
    dump = memory_dump()
    assert dump["timers"]["sql/read_hello"]["nb"] == 2
    assert set(dump["timers"]) == {"sql/read_hello", "export{format=csv}", "done"}
    assert dump["counters"] == {"logins{method=oidc}": 3}
    assert dump["gauges"] == {"queue/length": 42}


def test_merge_sums_the_workers() -> None:
    first, second = stats.MemoryBackend(), stats.MemoryBackend()
    first.timer(("t",), 0.010)
    second.timer(("t",), 0.030)
    second.timer(("t",), 0.020)
    first.counter(("c",), 1)
    second.counter(("c",), 2)
    first.gauge(("g",), 1)
    time.sleep(0.01)
    second.gauge(("g",), 5)
    merged = stats.merge([first.dump(), second.dump(reset=True)])
    assert merged["timers"]["t"] == {"nb": 3, "avg_ms": 20.0, "min_ms": 10.0, "max_ms": 30.0}
    assert merged["counters"] == {"c": 3}
    assert merged["gauges"] == {"g": 5}  # the latest set wins
    assert second.dump() == {"timers": {}, "gauges": {}, "counters": {}}


def test_automatic_metrics_count_the_status_of_error_views() -> None:
    app = make_app({"c2c.stats_view": "true"})
    app.get("/api/ping")
    app.get("/api/forbidden", status=403)
    app.get("/api/boom", status=500)
    app.get("/nowhere", status=404)
    timers = app.get("/c2c/stats.json").json["timers"]
    assert {"route/GET/ping/200", "render/GET/ping/200", "route/GET/forbidden/403"} <= set(timers)
    assert "route/GET/boom/500" in timers
    assert "route/GET/_not_found/404" in timers
    assert "render/GET/forbidden/403" not in timers  # no renderer ran


def test_unusual_methods_are_counted_as_other() -> None:
    """A client can send any word as the method: it must not make a series of its own."""
    app = make_app({"c2c.stats_view": "true"})
    unlinted = webtest.TestApp(app.app, lint=False)  # webtest's lint refuses unknown methods
    for method in ("PROPFIND", "XYZZY", "GET"):
        unlinted.request("/api/ping", method=method, expect_errors=True)
    timers = app.get("/c2c/stats.json").json["timers"]
    assert {key.split("/")[1] for key in timers if key.startswith("route/")} == {"GET", "other"}


def test_stats_json_reset_answers_then_clears() -> None:
    app = make_app({"c2c.stats_view": "true"})
    app.get("/api/ping")
    assert "route/GET/ping/200" in app.get("/c2c/stats.json?reset=1").json["timers"]
    assert "route/GET/ping/200" not in app.get("/c2c/stats.json").json["timers"]


def test_stats_json_takes_a_secret_when_one_is_set() -> None:
    app = make_app({"c2c.stats_view": "true", "c2c.stats_view_secret": "s3cret"})
    app.get("/c2c/stats.json", status=403)
    app.get("/c2c/stats.json", headers={"X-API-Key": "s3cret"}, status=200)


def test_the_tween_sits_under_request_tracking_and_over_excview() -> None:
    app = make_app({"c2c.stats_view": "true"})
    names = [name for name, _ in app.app.registry.queryUtility(ITweens).implicit()]
    tracking = "c2cwsgiutils.request_tracking.tween_factory"
    assert names.index(tracking) < names.index(stats_pyramid.TWEEN) < names.index(EXCVIEW)


def test_server_timing_header_uses_the_standard_syntax() -> None:
    app = make_app({"c2c.stats_view": "true"})
    header = app.get("/api/ping").headers["Server-Timing"]
    assert SERVER_TIMING.fullmatch(header), header
    assert ", render;dur=" in header


def test_server_timing_can_be_switched_off() -> None:
    app = make_app({"c2c.stats_view": "true", "c2c.server_timing": "false"})
    assert "Server-Timing" not in app.get("/api/ping").headers


def test_sql_queries_are_timed_by_shape() -> None:
    stats.add_backend(stats.MemoryBackend())
    assert stats_pyramid.init_db_spy()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1 WHERE 2 IN (3, 4, 5)"))
        connection.execute(sqlalchemy.text("SELECT 7 WHERE 'x' IN (:a, :b)"), {"a": "y", "b": "z"})
    engine.dispose()
    assert memory_dump()["timers"]["sql/SELECT ? WHERE ? IN (?)"]["nb"] == 2


def test_timer_stop_takes_the_originals_key_final() -> None:
    stats.add_backend(stats.MemoryBackend())
    stats.timer(["started"]).stop(key_final=["final", "key"])
    stats.timer().stop(key_final=["no", "key", "before"])
    assert set(memory_dump()["timers"]) == {"final/key", "no/key/before"}


def test_timer_stop_refuses_two_final_keys() -> None:
    stats.add_backend(stats.MemoryBackend())
    with pytest.raises(TypeError, match="not both"):
        stats.timer().stop(["a"], key_final=["b"])


def test_stats_json_key_has_no_slash_inside_a_part() -> None:
    """As the original's: a ``/`` in a part is ``_``, so that the parts stay apart."""
    stats.add_backend(stats.MemoryBackend())
    with stats.timer_context(["sql", "SELECT FROM t WHERE a / ? > ?"]):
        pass
    assert set(memory_dump()["timers"]) == {"sql/SELECT FROM t WHERE a _ ? > ?"}


def test_statsd_lines_are_packed_sanitised_and_tagged(udp_receiver: UdpReceiver) -> None:
    backend = stats.StatsdBackend(
        udp_receiver.address, "app", {"env": "prod"}, max_packet=200, flush_interval=60
    )
    backend.timer(("route", "GET", "a b|c:d", "200"), 0.0123)
    backend.gauge(("gauge",), -3)
    backend.counter(("count",), 2, {"k,x": "v|#y"})
    for index in range(20):
        backend.counter(("many", str(index)), 1)
    backend.flush()
    lines = []
    for _ in range(20):
        if sum(data.count(b"\n") + 1 for data in udp_receiver.received()) >= 24:
            break
        time.sleep(0.05)
    for data in udp_receiver.received():
        assert len(data) <= 200
        lines.extend(data.decode().split("\n"))
    assert lines[:4] == [
        "app.route.GET.a b_c_d.200:12.300|ms|#env:prod",
        "app.gauge:0|g|#env:prod",
        "app.gauge:-3|g|#env:prod",
        "app.count:2|c|#env:prod,k_x:v__y",
    ]
    assert len(lines) == 24
    assert len(udp_receiver.received()) > 1
    backend.close()


def test_statsd_name_is_the_originals(udp_receiver: UdpReceiver) -> None:
    """``.``, ``:`` and ``|`` in a part are ``_``; the rest is left to the statsd server, as before."""
    backend = stats.StatsdBackend(udp_receiver.address, "app", flush_interval=60)
    try:
        backend.timer(("sql", "UPDATE hello SET WHERE hello.id = ?"), 0.002)
        backend.counter(("a\nb", "x" * 500), 1)  # a line break would split our packed lines
        backend.flush()
        lines = udp_receiver.wait_for(lambda data: data.count(b"\n") == 1).decode().split("\n")
    finally:
        backend.close()
    assert lines[0] == "app.sql.UPDATE hello SET WHERE hello_id = ?:2.000|ms"
    name = lines[1].split(":", 1)[0]
    assert name.startswith("app.a_b.xxx")
    assert len(name) == stats.STATSD_MAX_NAME


def test_statsd_call_that_fills_a_datagram_sends_it(udp_receiver: UdpReceiver) -> None:
    """Once the address is resolved, full datagrams leave with the call, not 60 s later with the thread."""
    backend = stats.StatsdBackend(udp_receiver.address, max_packet=100, flush_interval=60)
    try:
        backend.counter(("first",), 1)
        backend.flush()  # what the thread does first: resolve, send what is queued
        udp_receiver.wait_for(lambda data: data == b"first:1|c")
        for index in range(10):  # lines of 10 bytes: the 10th call sends 9 of them (98 bytes)
            backend.counter(("line", str(index)), 1)
        datagram = udp_receiver.wait_for(lambda data: data.startswith(b"line.0:"))
        assert datagram.decode().split("\n") == [f"line.{index}:1|c" for index in range(9)]
        assert list(backend._lines) == ["line.9:1|c"]
    finally:
        backend.close()  # sends the rest
    assert udp_receiver.wait_for(lambda data: data.startswith(b"line.9:")) == b"line.9:1|c"


def test_statsd_that_does_not_resolve_warns_once_and_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    backend = stats.StatsdBackend("statsd.invalid:8125", flush_interval=60)
    for _ in range(3):
        backend.timer(("a",), 0.001)
        backend.flush()
    backend.close()
    assert capsys.readouterr().err.count("cannot resolve the statsd address statsd.invalid:8125") == 1


@pytest.mark.parametrize("address", ["localhost", "host:port", ":8125", "[::1]8125", "host:70000"])
def test_a_bad_statsd_address_is_refused_at_start(address: str) -> None:
    with pytest.raises(ValueError, match=r"ini key c2c\.statsd_address="):
        make_app({"c2c.statsd_address": address})


def test_ipv6_statsd_address() -> None:
    assert stats.parse_address("[::1]:8125") == ("::1", 8125)
