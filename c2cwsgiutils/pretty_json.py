"""The ``fast_json`` renderer: views' JSON serialised with orjson, Decimals kept exact.

``config.include("c2cwsgiutils.pyramid")`` (or ``"c2cwsgiutils.pretty_json"``) adds two renderers,
upstream's names: ``fast_json`` (Pyramid's JSON renderer with :class:`_FastDumps` as its
serialiser) and ``cornice_fast_json`` (the same for cornice services; cornice is imported when a
view first uses it). Pyramid's own ``json`` renderer is left as it is: the apps' ``json`` output
does not change by including the toolkit.
"""

import decimal
from collections.abc import Callable
from typing import Any

import orjson
from pyramid.config import Configurator
from pyramid.renderers import JSON

from c2cwsgiutils.include import first_time

__all__ = ["CORNICE_FAST_JSON", "FAST_JSON", "_FastDumps", "includeme", "init"]

FAST_JSON = "fast_json"
CORNICE_FAST_JSON = "cornice_fast_json"


class _FastDumps:
    """A JSON serialiser for Pyramid's ``JSON(serializer=...)``: ``_FastDumps(pretty, sort)(value) -> str``.

    orjson: compact (or indented by 2 with ``pretty_print``), keys sorted with ``sort_keys``,
    non-ASCII characters and ``/`` as they are, keys that are not strings (numbers, booleans) as
    strings. A ``Decimal`` is written as the number it holds, digit for digit (``Decimal("3.3")``
    gives ``3.3``; not a number or infinite gives ``null``). Whatever else orjson cannot encode goes
    to the ``default`` Pyramid's renderer passes (the renderer's adapters, ``__json__``); other
    keyword arguments are ignored.
    """

    def __init__(self, pretty_print: bool, sort_keys: bool) -> None:
        self.pretty_print = pretty_print
        self.sort_keys = sort_keys
        self._option = (
            orjson.OPT_NON_STR_KEYS
            | (orjson.OPT_INDENT_2 if pretty_print else 0)
            | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        )

    def __call__(self, v: Any, **kwargs: Any) -> str:
        """Return ``v`` as JSON text."""
        fallback: Callable[[Any], Any] | None = kwargs.get("default")

        def default(value: Any) -> Any:
            if isinstance(value, decimal.Decimal):
                return orjson.Fragment(str(value)) if value.is_finite() else None
            if fallback is not None:
                return fallback(value)
            raise TypeError(f"{type(value).__name__} is not JSON serializable")

        return orjson.dumps(v, default=default, option=self._option).decode("utf-8")


def _cornice_fast_json(info: Any) -> Any:
    """Make the ``cornice_fast_json`` renderer of a view; cornice is imported only then."""
    from cornice.renderer import CorniceRenderer  # noqa: PLC0415 (the services extra)

    return CorniceRenderer(serializer=_FastDumps(False, False))(info)


def includeme(config: Configurator) -> None:
    """Add the ``fast_json`` and ``cornice_fast_json`` renderers."""
    if not first_time(config, "pretty_json"):
        return
    config.add_renderer(FAST_JSON, JSON(serializer=_FastDumps(False, False)))
    config.add_renderer(CORNICE_FAST_JSON, _cornice_fast_json)


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.pretty_json")``."""
    config.include(includeme)
