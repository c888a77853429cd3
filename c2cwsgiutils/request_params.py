"""Typed, bounded parameters of the toolkit's views: a bad value is a :class:`ParamError`, a 400.

Every parameter a view reads has a type, a range and a size limit. ``str.isdigit()`` is not a
test of a whole number: it accepts ``²`` and ``٣``, which ``int()`` refuses or reads.
"""

import math

from pyramid.request import Request

from c2cwsgiutils.config_utils import is_ascii_int, parse_duration

MAX_NUMBER_TEXT = 32
"""Characters a number parameter may have: no whole number or duration of ours needs more."""


class ParamError(ValueError):
    """A view parameter that is missing, of the wrong type or out of its range."""

    def __init__(self, name: str, raw: str, expected: str) -> None:
        shown = raw if len(raw) <= MAX_NUMBER_TEXT else raw[:MAX_NUMBER_TEXT] + "…"
        super().__init__(f"{name}={shown!r}: expected {expected}")


def int_param(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    """Return the whole number ``?name=``, from ``minimum`` to ``maximum``."""
    raw = request.params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if len(text) > MAX_NUMBER_TEXT or not is_ascii_int(text) or not minimum <= int(text) <= maximum:
        raise ParamError(name, raw, f"a whole number from {minimum} to {maximum}")
    return int(text)


def duration_param(request: Request, name: str, default: float | None, maximum: float) -> float:
    """Return the duration ``?name=`` in seconds (``30``, ``1.5s``, ``250ms``...), from 0 to ``maximum``."""
    raw = request.params.get(name)
    expected = f"a duration from 0 to {maximum:g} s (such as 30, 1.5s or 250ms)"
    if raw is None:
        if default is None:
            raise ParamError(name, "", expected)
        return default
    try:
        seconds = parse_duration(raw) if len(raw) <= MAX_NUMBER_TEXT else math.inf
    except ValueError:
        raise ParamError(name, raw, expected) from None
    if not 0 <= seconds <= maximum:
        raise ParamError(name, raw, expected)
    return seconds
