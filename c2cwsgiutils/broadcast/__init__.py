"""Call a function on every worker of this gunicorn and of every container sharing the same Redis.

::

    from c2cwsgiutils import broadcast

    def set_level(name: str, level: str) -> dict[str, str]:
        logging.getLogger(name).setLevel(level)
        return {"pid": os.getpid()}

    broadcast.subscribe("c2c_logging_level", set_level)
    answers = broadcast.broadcast(
        "c2c_logging_level", {"name": "sqlalchemy", "level": "DEBUG"},
        expect_answers=True, store=True, state_key="sqlalchemy",
    )

The call runs in the calling process first (synchronously), then in every other process: through
Redis pub/sub when ``C2C_REDIS_URL`` is set (:mod:`.redis_transport`), otherwise through Unix
datagram sockets shared by the workers of one gunicorn (:mod:`.local`). A process that is not a
gunicorn worker and has no Redis reaches itself only. A stored call (``store=True``) is also kept
as runtime state, one per channel and state key, and replayed by every process that starts later
(a worker replaced after ``max_requests``, a reload or a crash) or subscribes later.

The broadcaster of the process is :data:`BROADCASTER`; ``includeme`` starts its transport.
Nothing happens at import time. Failures cost a warning, at most one a minute of each kind: a
Redis that is down or stalled makes calls apply in the calling process only, without waiting for
it more than half a second (the calls stored meanwhile are queued, :func:`queued`, and sent as
soon as it answers again); a listener thread that dies is restarted, by the next broadcast or
within a second by a watchdog thread.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils.broadcast.core import (
    Broadcaster,
    InProcessTransport,
    Transport,
    TransportError,
    process_role,
)
from c2cwsgiutils.broadcast.redis_connection import RedisSentinelSettings, RedisTarget, target
from c2cwsgiutils.config_utils import SettingsGroup, parse_positive_duration, setting
from c2cwsgiutils.include import first_time

__all__ = [
    "BROADCASTER",
    "QUEUED_MESSAGE",
    "BroadcastSettings",
    "TransportError",
    "broadcast",
    "decorator",
    "forget",
    "includeme",
    "init",
    "queued",
    "stored",
    "subscribe",
    "unsubscribe",
]

T = TypeVar("T")

BROADCASTER = Broadcaster()
"""The broadcaster of this process: its subscriptions, transport and listener. ``reset()`` in tests."""


@dataclasses.dataclass(frozen=True)
class BroadcastSettings(SettingsGroup):
    """Where broadcast calls travel."""

    TITLE = "Broadcast"

    redis_url: str | None = setting(
        "C2C_REDIS_URL",
        "c2c.redis_url",
        None,
        "Redis shared by the containers of the app (`redis://host:6379/0`, `rediss://` for TLS): "
        "broadcasts (log levels...) reach every worker of every container through it. Unset: "
        "they reach the workers of this gunicorn only.",
        secret=True,
    )
    prefix: str = setting(
        "C2C_BROADCAST_PREFIX",
        "c2c.broadcast_prefix",
        "c2cwsgiutils_broadcast",
        "Prefix of the Redis channel and keys of the broadcasts; apps that share a Redis need one each.",
    )
    redis_timeout: float = setting(
        "C2C_REDIS_TIMEOUT",
        "c2c.redis_timeout",
        2.0,
        "How long a Redis connection or command may take before Redis counts as away (a request "
        "waits for Redis at most 0.5 s, or this if less).",
        parse=parse_positive_duration,
        default_doc="`2s`",
    )
    directory: str | None = setting(
        "C2C_BROADCAST_DIR",
        "c2c.broadcast_dir",
        None,
        "Directory of the Unix sockets through which the workers of one gunicorn broadcast "
        "without Redis (kept private: mode 0700).",
        default_doc="`$TMPDIR/c2cwsgiutils-broadcast-<uid>`",
    )


def configured_target(holder: Configurator | Request) -> RedisTarget | None:
    """Return the app's Redis: the Sentinels, else ``C2C_REDIS_URL``, else None."""
    return target(BroadcastSettings.of(holder), RedisSentinelSettings.of(holder))


def _factory(
    settings: BroadcastSettings, master_pid: int | None, redis_target: RedisTarget | None
) -> Callable[[Broadcaster], Transport]:
    def make(broadcaster: Broadcaster) -> Transport:
        if redis_target is not None:
            from c2cwsgiutils.broadcast.redis_transport import RedisTransport  # noqa: PLC0415 (needs the extra)

            return RedisTransport(broadcaster, redis_target, settings.prefix, settings.redis_timeout)
        if master_pid is None:
            return InProcessTransport()
        from c2cwsgiutils.broadcast import local  # noqa: PLC0415

        directory = Path(settings.directory) if settings.directory else local.default_directory()
        return local.LocalTransport(broadcaster, directory, local.group_name(master_pid))

    return make


def start(
    settings: BroadcastSettings,
    broadcaster: Broadcaster = BROADCASTER,
    sentinel_settings: RedisSentinelSettings | None = None,
) -> None:
    """Start ``broadcaster``'s transport as ``settings`` and the kind of process this is say.

    The Redis is the Sentinels' master when ``sentinel_settings`` name them, else ``C2C_REDIS_URL``.
    """
    role, pid = process_role()
    # A worker's group is its master's; a master that loads the app before forking names its
    # workers' group, and starts no transport itself (``defer``).
    master_pid = None if role == "plain" else pid
    redis_target = target(settings, sentinel_settings or RedisSentinelSettings())
    broadcaster.start(
        (settings, redis_target, role, pid),
        _factory(settings, master_pid, redis_target),
        defer=role == "master",
    )


def includeme(config: Configurator) -> None:
    """Switch the broadcaster on: Redis if ``C2C_REDIS_SENTINELS`` or ``C2C_REDIS_URL`` is set, else local."""
    if not first_time(config, "broadcast"):
        return
    start(BroadcastSettings.of(config), sentinel_settings=RedisSentinelSettings.of(config))


def init(config: Configurator | None = None) -> None:
    """Switch the broadcaster on (the original's name); without ``config``, from the environment."""
    if config is not None:
        includeme(config)
    else:
        start(BroadcastSettings.resolve(None), sentinel_settings=RedisSentinelSettings.resolve(None))


def subscribe(channel: str, callback: Callable[..., Any]) -> None:
    """Call ``callback(**params)`` in this process for each broadcast on ``channel``.

    Its return value is this process's answer, and must be JSON-serialisable. The calls stored on
    ``channel`` are applied now. A callback that raises is logged; its process gives no answer.
    """
    BROADCASTER.subscribe(channel, callback)


def unsubscribe(channel: str) -> None:
    """Stop calling the callback of ``channel`` in this process."""
    BROADCASTER.unsubscribe(channel)


def broadcast(
    channel: str,
    params: dict[str, Any] | None = None,
    expect_answers: bool = False,
    timeout: float = 10,
    *,
    store: bool = False,
    state_key: str | None = None,
) -> list[Any] | None:
    """Call ``channel``'s callback with ``params`` in every process: this one first, then the others.

    With ``expect_answers``, return the answers gathered within ``timeout`` seconds: one per
    process that has a callback on ``channel`` and answered in time, this process's first. A
    process that answers late, whose callback raised, or that could not be reached is left out
    (with a warning), so the list may be shorter than the number of processes; it never blocks
    longer than ``timeout``. Without it, return None as soon as the call is sent.

    With ``store``, the call is also kept as runtime state: the last stored call of each
    ``channel`` and ``state_key`` (for instance a logger's name) is replayed by every process that
    starts or subscribes later.

    ``params`` must be JSON-serialisable (TypeError otherwise). A transport that fails never
    raises here: the call then applies in this process only.
    """
    return BROADCASTER.broadcast(channel, params, expect_answers, timeout, store=store, state_key=state_key)


def stored(channel: str) -> dict[str, dict[str, Any]]:
    """Return the parameters of the calls stored on ``channel``, by state key.

    Raises :class:`TransportError` when they cannot be read now (Redis away or stalled: at once,
    or within half a second), rather than claim there are none.
    """
    return BROADCASTER.stored(channel)


QUEUED_MESSAGE = (
    "applied by this worker; Redis does not answer, so the change is queued and reaches the other "
    "workers as soon as it answers again"
)
"""What a view that changed state through a queued call says (with its 202)."""


def queued(channel: str) -> dict[str, dict[str, Any]]:
    """Return the calls stored on ``channel`` from this process that did not reach the others yet.

    By state key, their parameters. Redis was away when they were made; they are sent as soon as
    it answers again.
    """
    return BROADCASTER.queued(channel)


def forget(channel: str, state_key: str | None = None, params: dict[str, Any] | None = None) -> None:
    """Remove a stored call: the processes started from now on do not replay it.

    With ``params``, only if the stored call still has these parameters (nobody changed it since
    it was read).
    """
    BROADCASTER.forget(channel, state_key, params)


def decorator(
    channel: str | None = None, expect_answers: bool = False, timeout: float = 10
) -> Callable[[Callable[..., T]], Callable[..., list[T] | None]]:
    """Make calling a function broadcast it: it runs in every process, as :func:`broadcast` says.

    The function is subscribed on ``channel`` (default: its module and name) when it is decorated;
    the decorated function takes the same arguments and returns what :func:`broadcast` returns.
    """

    def wrap(function: Callable[..., T]) -> Callable[..., list[T] | None]:
        name = channel or f"c2c_decorated_{function.__module__}.{function.__qualname__}"
        signature = inspect.signature(function)
        if any(parameter.kind is parameter.VAR_POSITIONAL for parameter in signature.parameters.values()):
            raise TypeError(f"{function.__qualname__}: a broadcast function cannot take *args")
        subscribe(name, function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> list[T] | None:
            params: dict[str, Any] = {}
            for parameter_name, value in signature.bind(*args, **kwargs).arguments.items():
                if signature.parameters[parameter_name].kind is inspect.Parameter.VAR_KEYWORD:
                    params.update(value)
                else:
                    params[parameter_name] = value
            return broadcast(name, params, expect_answers=expect_answers, timeout=timeout)

        return wrapper

    return wrap
