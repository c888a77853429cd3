"""Where the toolkit's Redis is: one URL (``C2C_REDIS_URL``) or a Redis Sentinel group.

With ``C2C_REDIS_SENTINELS`` (``host:port,host:port,...``) and ``C2C_REDIS_SERVICENAME``, the
client asks the Sentinels for the current master of the service, database ``C2C_REDIS_DB``, and
asks again each time it reconnects: after a failover, the next connection goes to the new master
(redis-py's ``Sentinel.master_for``; a connection that meets a master turned replica is dropped and
made again). The Sentinels win over ``C2C_REDIS_URL`` when both are set.

Every Redis use of the toolkit makes its client with :func:`make_client`, so they all follow the
same settings.
"""

import dataclasses
import urllib.parse
from typing import Any

from c2cwsgiutils import extras
from c2cwsgiutils.config_utils import SettingError, SettingsGroup, int_at_least, is_ascii_int, setting


class Sentinels(tuple):  # type: ignore[type-arg]
    """Sentinel addresses, shown as the setting is written (``host:port,host:port``)."""

    __slots__ = ()

    def __str__(self) -> str:
        return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in self)


def parse_sentinels(raw: str) -> tuple[tuple[str, int], ...]:
    """Parse ``host:port,host:port`` (``[ipv6]:port`` too) into addresses."""
    sentinels = []
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        host, colon, port = text.rpartition(":")
        host = host.strip("[]")
        if not colon or not host or not is_ascii_int(port) or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port")
        sentinels.append((host, int(port)))
    if not sentinels:
        raise ValueError("expected host:port,host:port...")
    return Sentinels(sentinels)


def safe_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for the logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


@dataclasses.dataclass(frozen=True)
class RedisSentinelSettings(SettingsGroup):
    """Redis through Sentinel (the original c2cwsgiutils' names)."""

    TITLE = "Redis Sentinel"

    sentinels: tuple[tuple[str, int], ...] | None = setting(
        "C2C_REDIS_SENTINELS",
        "c2c.redis_sentinels",
        None,
        "Sentinels to ask for the Redis master (`host:port,host:port,...`); used instead of "
        "`C2C_REDIS_URL` for the broadcast and every other Redis use, and followed across failovers.",
        parse=parse_sentinels,
    )
    service_name: str | None = setting(
        "C2C_REDIS_SERVICENAME",
        "c2c.redis_servicename",
        None,
        "The name of the master the Sentinels monitor (needed with `C2C_REDIS_SENTINELS`).",
    )
    db: int = setting(
        "C2C_REDIS_DB",
        "c2c.redis_db",
        0,
        "The database number, with `C2C_REDIS_SENTINELS`.",
        parse=int_at_least(0),
    )


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """A Redis to connect to: a URL, or a service behind Sentinels."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    db: int = 0

    def describe(self) -> str:
        """Say which Redis it is, for the logs (no password)."""
        if self.sentinels:
            return f"sentinel://{Sentinels(self.sentinels)}/{self.service_name}/{self.db}"
        return safe_url(self.url or "")


def target(settings: Any, sentinel_settings: RedisSentinelSettings) -> RedisTarget | None:
    """Return the Redis of the settings (``settings.redis_url`` and the Sentinel's), or None."""
    if sentinel_settings.sentinels:
        if not sentinel_settings.service_name:
            raise SettingError("C2C_REDIS_SENTINELS is set: C2C_REDIS_SERVICENAME is needed too")
        return RedisTarget(
            sentinels=sentinel_settings.sentinels,
            service_name=sentinel_settings.service_name,
            db=sentinel_settings.db,
        )
    url = getattr(settings, "redis_url", None)
    return RedisTarget(url=url) if url else None


def make_client(redis_target: RedisTarget | str, timeout: float, **kwargs: Any) -> Any:
    """Return a ``redis.Redis`` for the target (a URL string is a target too) with these timeouts."""
    redis = extras.require("redis", "redis", "C2C_REDIS_URL or C2C_REDIS_SENTINELS")
    if isinstance(redis_target, str):
        redis_target = RedisTarget(url=redis_target)
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout, **kwargs}
    if redis_target.sentinels:
        sentinel_module: Any = extras.require("redis.sentinel", "redis", "C2C_REDIS_SENTINELS")
        sentinel = sentinel_module.Sentinel(
            list(redis_target.sentinels),
            sentinel_kwargs={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        )
        return sentinel.master_for(redis_target.service_name, db=redis_target.db, **options)
    return redis.Redis.from_url(redis_target.url, **options)
