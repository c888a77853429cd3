"""Setting resolution: the environment wins, then the ini file, then the default.

Every c2cwsgiutils setting has an environment variable (``C2C_BASE_PATH``) and, unless it
configures the server that reads the ini file, an ini key (``c2c.base_path``). An empty
environment variable counts as unset. The typed getters reject a bad value with a
:class:`SettingError` that names where the value came from, so a typo fails at start-up with a
message that says what to fix.

Each feature declares its settings once, as a frozen dataclass deriving from
:class:`SettingsGroup` whose fields are made by :func:`setting`; the group is resolved when the
feature is included (never per request), and the tables of docs/ are generated from the same
declarations (:mod:`c2cwsgiutils.settings_catalogue`).
"""

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

from pyramid.config import Configurator
from pyramid.request import Request

T = TypeVar("T")

_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")


class SettingError(ValueError):
    """A setting has a value that cannot be used."""


def lookup(
    settings: Mapping[str, Any] | None,
    env_name: str | None,
    ini_key: str | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, Any] | None:
    """Return ``(source, raw value)`` of the first place that defines the setting, or None."""
    environ = os.environ if environ is None else environ
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
    found = lookup(settings, env_name, ini_key, environ)
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


def is_ascii_int(text: str) -> bool:
    """Say whether ``text`` is a non-empty run of ASCII digits.

    What ``str.isdigit()`` is often taken for: it also accepts ``²``, which ``int()`` refuses, and
    ``int()`` reads ``٣`` as 3.
    """
    return text.isascii() and text.isdigit()


def parse_int(raw: str) -> int:
    """Parse a whole number."""
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """Return a parser of whole numbers that are at least ``minimum``."""

    def parse(raw: str) -> int:
        value = parse_int(raw)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return parse


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
    parse = parse_int if minimum is None else int_at_least(minimum)
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


def parse_positive_duration(raw: str) -> float:
    """Parse a duration that must be more than zero (a timeout, an interval)."""
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


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
    # Braces would be read as route placeholders by Pyramid.
    if any(char in raw for char in "?#% {}") or "//" in raw:
        raise ValueError("expected a URL path such as /c2c")
    return "/" + raw.strip("/") if raw.strip("/") else ""


# The settings catalogue: declarations, groups, resolution.


@dataclasses.dataclass(frozen=True)
class Setting(Generic[T]):
    """The declaration of one setting: where it is read from, its type, default and meaning."""

    env: str
    ini: str | None
    default: T
    doc: str
    parse: Callable[[str], T]
    secret: bool = False
    default_doc: str | None = None
    """How the default reads in the docs, when ``default`` alone would not say it."""

    def resolve(self, settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> T:
        """Return the value: environment, then ini, then default."""
        value: T = get(settings, self.env, self.ini, self.default, self.parse, environ=environ)
        return value

    def source(self, settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> str:
        """Say where the value comes from: an environment variable, an ini key or the default."""
        found = lookup(settings, self.env, self.ini, environ)
        return "default" if found is None else found[0]

    def default_text(self) -> str:
        """Return the default as an environment variable would hold it ("" for none)."""
        default: Any = self.default
        if default is None:
            return ""
        if isinstance(default, bool):
            return "true" if default else "false"
        if isinstance(default, tuple):
            return ",".join(str(item) for item in default)
        return str(default)

    def shown_default(self) -> str:
        """Return the default as the docs show it."""
        if self.default_doc is not None:
            return self.default_doc
        return self.default_text() or "unset"


def setting(
    env: str,
    ini: str | None,
    default: Any,
    doc: str,
    *,
    parse: Callable[[str], Any] = str,
    secret: bool = False,
    default_doc: str | None = None,
) -> Any:
    """Declare a field of a :class:`SettingsGroup` as a setting."""
    declaration = Setting(env, ini, default, doc, parse, secret, default_doc)
    return dataclasses.field(default=default, metadata={"setting": declaration})


@dataclasses.dataclass(frozen=True)
class SettingsGroup:
    """Base of a feature's frozen settings object.

    A subclass is a ``@dataclasses.dataclass(frozen=True)`` whose fields are :func:`setting`
    declarations, with a ``TITLE`` for the docs.
    """

    TITLE: ClassVar[str] = ""

    @classmethod
    def declarations(cls) -> Iterator[tuple[str, Setting[Any]]]:
        """Yield ``(field name, declaration)`` for each setting of the group."""
        for field in dataclasses.fields(cls):
            declaration = field.metadata.get("setting")
            if declaration is not None:
                yield field.name, declaration

    @classmethod
    def declaration(cls, name: str) -> Setting[Any]:
        """Return the declaration of one field."""
        return dict(cls.declarations())[name]

    @classmethod
    def resolve(cls, settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> Self:
        """Resolve every setting of the group; a bad value raises :class:`SettingError`."""
        return cls(
            **{name: declaration.resolve(settings, environ) for name, declaration in cls.declarations()}
        )

    @classmethod
    def of(cls, holder: Configurator | Request) -> Self:
        """Return the group resolved from the app's settings, once per registry."""
        key = f"c2cwsgiutils.settings.{cls.__module__}.{cls.__qualname__}"
        registry = holder.registry
        if key not in registry:
            registry[key] = cls.resolve(registry.settings)
        group: Self = registry[key]
        return group


# The original c2cwsgiutils' names for the same resolution, kept for the apps written for it.


def env_or_settings(
    settings: Mapping[str, Any] | None,
    env_name: str | None = None,
    settings_name: str | None = None,
    default: Any = None,
    type_: Callable[[str], Any] = str,
) -> Any:
    """Return the environment variable if set, else the ini setting, else ``default``."""
    return get(settings, env_name, settings_name, default, type_)


def env_or_config(
    config: Configurator | None,
    env_name: str | None = None,
    settings_name: str | None = None,
    default: Any = None,
    type_: Callable[[str], Any] = str,
) -> Any:
    """Like :func:`env_or_settings`, with the settings of a Pyramid configurator."""
    settings = config.get_settings() if config is not None else None
    return env_or_settings(settings, env_name, settings_name, default, type_)


def config_bool(value: str | None) -> bool:
    """Parse a boolean setting value; None is false."""
    return value is not None and parse_bool(value)


def get_base_path(config: Configurator) -> str:
    """Return the ops views' URL prefix, ``C2C_BASE_PATH``, as :func:`c2cwsgiutils.ops_views.base_path` does.

    Upstream 6.1's name. ``/`` is the root, returned as ``""`` (the prefix joined to each view's path).
    """
    # Declared in ops_views.OpsViewsSettings; read here by the same names, as ops_views imports
    # this module (a test keeps the two the same).
    return str(get(config.get_settings(), "C2C_BASE_PATH", "c2c.base_path", "/c2c", parse_base_path))
