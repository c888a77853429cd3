"""routes_mapper.PrefixRoutesMapper: Pyramid's matches, with groups of routes skipped by their start."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyramid.config import Configurator
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid.urldispatch import RoutesMapper

import c2cwsgiutils.pyramid
from c2cwsgiutils.routes_mapper import PrefixRoutesMapper, literal_start

SEGMENTS = ("c2c", "c2cx", "api", "health", "{id}", "{n:\\d+}", ":old", "a*b", "é")
PATH_SEGMENTS = ("c2c", "c2cx", "api", "health", "12", "x", "a*b", ":old", "é", "")


def pattern(lead: str, parts: list[str], end: str) -> str:
    """Join the parts, each placeholder with a name of its own (Pyramid refuses a name twice)."""
    named = [
        part.replace("{id", f"{{id{index}").replace("{n", f"{{n{index}") for index, part in enumerate(parts)
    ]
    named = [
        part.replace(":old", f":old{index}") if part == ":old" else part for index, part in enumerate(named)
    ]
    return lead + "/".join(named) + end


def pattern_strategy() -> Any:
    segments = st.lists(st.sampled_from(SEGMENTS), max_size=3)
    star = st.sampled_from(["", "/*rest", "*rest"])
    slash = st.sampled_from(["/", ""])
    return st.builds(pattern, slash, segments, star)


def route_name(mapper: RoutesMapper, path: str, method: str) -> str | None:
    request = Request.blank("/", method=method)
    request.path_info = path
    route = mapper(request)["route"]
    return None if route is None else str(route.name)


def only_post(info: dict[str, Any], request: Request) -> bool:
    del info
    return bool(request.method == "POST")


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(pattern_strategy(), min_size=1, max_size=8),
    paths=st.lists(st.lists(st.sampled_from(PATH_SEGMENTS), max_size=4), min_size=1, max_size=6),
    post_only=st.sets(st.integers(0, 7)),
)
def test_same_route_as_pyramid(patterns: list[str], paths: list[list[str]], post_only: set[int]) -> None:
    ours, pyramids = PrefixRoutesMapper(), RoutesMapper()
    for number, pattern in enumerate(patterns):
        predicates = (only_post,) if number in post_only else ()
        for mapper in (ours, pyramids):
            mapper.connect(f"route{number}", pattern, predicates=predicates)
    for segments in paths:
        path = "/" + "/".join(segments)
        for method in ("GET", "POST"):
            assert route_name(ours, path, method) == route_name(pyramids, path, method), (patterns, path)


def test_groups_follow_the_order_of_the_routes() -> None:
    mapper = PrefixRoutesMapper()
    for name, pattern in (
        ("health", "/c2c/health"),
        ("versions", "c2c/versions.json"),
        ("item", "/api/{id}"),
    ):
        mapper.connect(name, pattern)
    mapper.connect("stats", "/c2c/stats.json")  # after an app route: a group of its own
    assert [(start, [route.name for route in routes]) for start, routes in mapper.groups()] == [
        ("/c2c/", ["health", "versions"]),
        ("/api/", ["item"]),
        ("/c2c/stats.json", ["stats"]),
    ]
    mapper.connect("health", "/other")  # replaced: moves to the end, as in Pyramid
    assert [route.name for _, routes in mapper.groups() for route in routes] == [
        "versions",
        "item",
        "stats",
        "health",
    ]


@pytest.mark.parametrize(
    ("pattern", "start"),
    [
        ("/c2c/health", "/c2c/health"),
        ("c2c/{x}", "/c2c/"),
        ("/a/:id", "/a/"),
        ("/static/*sub", "/static/"),
        ("{x}", "/"),
    ],
)
def test_literal_start(pattern: str, start: str) -> None:
    assert literal_start(pattern) == start


def test_the_include_installs_it_unless_the_app_has_a_mapper() -> None:
    config = Configurator(settings={})
    config.include(c2cwsgiutils.pyramid.includeme)
    assert type(config.registry.getUtility(IRoutesMapper)) is PrefixRoutesMapper

    config = Configurator(settings={})
    config.add_route("early", "/early")  # the app's mapper exists before the include
    config.include(c2cwsgiutils.pyramid.includeme)
    assert type(config.registry.getUtility(IRoutesMapper)) is RoutesMapper
