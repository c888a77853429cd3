"""Pyramid's routes mapper, skipping with one string comparison the routes a path cannot match.

Pyramid tries every route in order, a regular expression each, until one matches: an app's own
route comes after the toolkit's (``{C2C_BASE_PATH}/health``, ``/versions.json``, the ops
views...), so each of its requests paid for about fifteen failed matches (bench/results.md,
"Design figures"). A route can only match a path that starts with its pattern's literal start (the text
before the first ``{``, ``:`` or ``*``); consecutive routes that share a literal start of more than
``/`` form a group, skipped as a whole when the path does not start with it. The order of the
routes, their predicates and what matches are Pyramid's own: the groups only skip routes that could
not have matched.

Installed by ``c2cwsgiutils.pyramid``'s include when the app has no routes mapper yet (that is, when
the include comes before the app's first ``add_route``, as usual); otherwise Pyramid's stays.
"""

import os
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import URLDecodeError
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid.urldispatch import Route, RoutesMapper

_PLACEHOLDERS = "{:*"


def literal_start(pattern: Any) -> str:
    """Return what every path a route pattern matches starts with: the text before any placeholder."""
    if not isinstance(pattern, str):
        return "/"  # a bytes pattern, decoded by Pyramid: no shortcut
    if not pattern.startswith("/"):
        pattern = "/" + pattern  # as Pyramid does
    end = min((index for index in map(pattern.find, _PLACEHOLDERS) if index >= 0), default=len(pattern))
    return str(pattern[:end])


_Group = tuple[str, list[Route]]


class PrefixRoutesMapper(RoutesMapper):  # type: ignore[misc]
    """A :class:`pyramid.urldispatch.RoutesMapper` that skips groups of routes by their literal start."""

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[_Group] | None = None  # made again after each connect

    def connect(self, *args: Any, **kwargs: Any) -> Route:
        """Add (or replace) a route, as Pyramid does; the groups are made again."""
        self._groups = None
        return super().connect(*args, **kwargs)

    def groups(self) -> list[_Group]:
        """Return the routes in order, in groups of consecutive routes sharing a literal start."""
        groups = self._groups
        if groups is None:
            groups = []
            for route in self.routelist:
                start = literal_start(route.pattern)
                if groups:
                    # Character by character (/c2c and /c2cx share /c2c), which is what is wanted.
                    common = os.path.commonprefix([groups[-1][0], start])  # noqa: RUF071
                    if len(common) > 1:
                        groups[-1] = (common, [*groups[-1][1], route])
                        continue
                groups.append((start, [route]))
            self._groups = groups
        return groups

    def __call__(self, request: Request) -> dict[str, Any]:
        """Return the first route that matches the request, and its match, as Pyramid does."""
        try:
            path = request.path_info or "/"
        except KeyError:
            path = "/"
        except UnicodeDecodeError as error:
            raise URLDecodeError(
                error.encoding, error.object, error.start, error.end, error.reason
            ) from error
        for start, routes in self.groups():
            if not path.startswith(start):
                continue
            for route in routes:
                match = route.match(path)
                if match is not None:
                    predicates = route.predicates
                    info = {"match": match, "route": route}
                    if predicates and not all(predicate(info, request) for predicate in predicates):
                        continue
                    return info
        return {"route": None, "match": None}


def includeme(config: Configurator) -> None:
    """Use :class:`PrefixRoutesMapper` unless the app already has a routes mapper."""
    if config.registry.queryUtility(IRoutesMapper) is None:
        config.registry.registerUtility(PrefixRoutesMapper(), IRoutesMapper)
