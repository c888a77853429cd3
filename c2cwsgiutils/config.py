"""Setting resolution: the environment wins, then the ini file, then the default.

Every c2cwsgiutils setting has an environment variable (``C2C_BASE_PATH``) and an ini key
(``c2c.base_path``). An empty environment variable counts as unset. The typed getters reject a bad
value with a :class:`SettingError` that names where the value came from, so a typo fails at
start-up with a message that says what to fix.

Settings are resolved once, when a feature is included, never per request.
"""

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")


class SettingError(ValueError):
    """A setting has a value that cannot be used."""


def _lookup(
    settings: Mapping[str, Any] | None, env_name: str | None, ini_key: str | None, environ: Mapping[str, str]
) -> tuple[str, Any] | None:
    """Return ``(source, raw value)`` of the first place that defines the setting, or None."""
    if env_name is not None:
        value = environ.get(env_name)
        if value is not None and value != "":
            return f"environment variable {env_name}", value
    if ini_key is not None and settings is not None:
        value = settings.get(ini_key)
        if value is not None and value != "":
            return f"ini key {ini_key}", value
    return None


def get(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: T,
    parse: Callable[[str], Any] = str,
    *,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """Resolve one setting and convert it with ``parse`` (which raises ValueError on bad input)."""
    found = _lookup(settings, env_name, ini_key, os.environ if environ is None else environ)
    if found is None:
        return default
    source, raw = found
    if not isinstance(raw, str):
        # An app may put an already typed value in its settings dict.
        return raw
    try:
        return parse(raw)
    except ValueError as error:
        raise SettingError(f"{source}={raw!r}: {error}") from None


def get_str(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: T,
    *,
    environ: Mapping[str, str] | None = None,
) -> str | T:
    """Resolve a string setting."""
    value: str | T = get(settings, env_name, ini_key, default, str, environ=environ)
    return value


def parse_bool(raw: str) -> bool:
    """Parse true/yes/on/1 and false/no/off/0, in any case."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected one of true/yes/on/1 or false/no/off/0")


def get_bool(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: bool,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Resolve a boolean setting."""
    return bool(get(settings, env_name, ini_key, default, parse_bool, environ=environ))


def parse_int(raw: str) -> int:
    """Parse a whole number."""
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def get_int(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: int,
    *,
    environ: Mapping[str, str] | None = None,
    minimum: int | None = None,
) -> int:
    """Resolve an integer setting, optionally with a lower bound."""

    def parse(raw: str) -> int:
        value = parse_int(raw)
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return int(get(settings, env_name, ini_key, default, parse, environ=environ))


def parse_float(raw: str) -> float:
    """Parse a decimal number."""
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def get_float(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: float,
    *,
    environ: Mapping[str, str] | None = None,
) -> float:
    """Resolve a decimal setting."""
    return float(get(settings, env_name, ini_key, default, parse_float, environ=environ))


def parse_duration(raw: str) -> float:
    """Parse a duration in seconds: ``30``, ``1.5s``, ``250ms``, ``2m`` or ``1h``."""
    match = _DURATION_RE.match(raw)
    if match is None:
        raise ValueError("expected a duration such as 30, 1.5s, 250ms, 2m or 1h")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def get_duration(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    default: float,
    *,
    environ: Mapping[str, str] | None = None,
) -> float:
    """Resolve a duration setting, in seconds."""
    return float(get(settings, env_name, ini_key, default, parse_duration, environ=environ))


def parse_base_path(raw: str) -> str:
    """Normalise a URL prefix: one leading slash, no trailing slash (``/`` alone means the root)."""
    if any(char in raw for char in "?#% ") or "//" in raw:
        raise ValueError("expected a URL path such as /c2c")
    return "/" + raw.strip("/") if raw.strip("/") else ""


def base_path(settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the prefix of every c2cwsgiutils view (``C2C_BASE_PATH``, default ``/c2c``)."""
    return str(get(settings, "C2C_BASE_PATH", "c2c.base_path", "/c2c", parse_base_path, environ=environ))


def development(settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether development mode (stack traces to clients) is on: ``DEVELOPMENT=1``."""
    return get_bool(settings, "DEVELOPMENT", "c2c.development", False, environ=environ)
