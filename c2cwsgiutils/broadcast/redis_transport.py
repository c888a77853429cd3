"""The Redis channel: every process of every container sharing ``C2C_REDIS_URL`` (or the Sentinels' master).

Keys, all under the prefix ``C2C_BROADCAST_PREFIX``:

- ``<prefix>:calls``, a pub/sub channel: each call is published there as JSON (a
  :class:`~.core.Call`). Every process's listener thread subscribes to it.
- ``<prefix>:answers:<call id>``, a list: the processes push their JSON :class:`~.core.Reply` there
  when the call asks for answers (with an expiry); ``PUBLISH`` returned how many processes
  received the call, so the sender knows how many replies to wait for.
- ``<prefix>:state``, a hash: the stored calls, one field per channel and state key. A stored
  call is written and published in one transaction, so every process sees the calls of one key
  in the order the hash took them.

The listener loops: connect, subscribe, publish what this process stored while Redis was away
(unless a newer call of the same key is stored by then), apply the stored calls it has not
applied yet, then handle calls. When Redis goes away it warns
(at most once a minute) and reconnects with a growing delay (0.1 s, doubling up to 2 s), so a
Redis that comes back is used again without a restart, and the calls stored meanwhile reach this
process exactly once. Through Sentinel (:mod:`c2cwsgiutils.redis_connection`), each reconnection
asks the Sentinels for the master: after a failover the listener subscribes on the new master,
publishes what was stored meanwhile and applies what it missed.
"""

import contextlib
import dataclasses
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from c2cwsgiutils import extras
from c2cwsgiutils.broadcast.core import LOG, Call, Receiver, Reply, TransportError
from c2cwsgiutils.redis_connection import RedisTarget, make_client, safe_url

__all__ = ["RedisTransport", "safe_url"]

POLL_INTERVAL = 0.5
"""Seconds the listener waits for a message before checking whether it should stop."""
MIN_BACKOFF = 0.1
MAX_BACKOFF = 2.0
ANSWERS_EXPIRY = 10
"""Seconds a list of answers outlives the time its sender waits for them."""


def _field(channel: str, key: str) -> bytes:
    return orjson.dumps([channel, key])


class RedisTransport:
    """Redis pub/sub, a hash for the stored calls and lists for the answers; see the module's docstring."""

    name = "redis"

    def __init__(self, receiver: Receiver, target: RedisTarget | str, prefix: str, timeout: float) -> None:
        """Use the Redis of ``target`` (a URL, or Sentinels)."""
        redis = extras.require("redis", "redis", "C2C_REDIS_URL")
        from redis.backoff import NoBackoff  # noqa: PLC0415 (the extra is imported when it is used)
        from redis.retry import Retry  # noqa: PLC0415

        target = RedisTarget(url=target) if isinstance(target, str) else target
        self._receiver = receiver
        self.url = target.describe()
        self.timeout = timeout
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError, TransportError)
        # One retry: the first command on a connection that Redis closed (a restart, a failover) fails.
        self._client: Any = make_client(
            target,
            timeout,
            socket_keepalive=True,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 1),
        )
        self.calls_channel = f"{prefix}:calls"
        self.state_key = f"{prefix}:state"
        self.answers_prefix = f"{prefix}:answers:"
        self.connected = False
        self.subscriptions = 0  # how many times the listener (re)subscribed
        self._pending: dict[bytes, Call] = {}  # stored while Redis was away, to publish when it is back
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._restart_lock = threading.Lock()

    # The listener.

    def start(self) -> None:
        """Start the listener; wait (at most the Redis timeout) for it to apply the stored calls."""
        self._start_thread().wait(self.timeout)

    def _start_thread(self) -> threading.Event:
        first_attempt = threading.Event()
        self._generation += 1
        self._thread = threading.Thread(
            target=self._listen, args=(first_attempt,), name="c2cwsgiutils-broadcast-listener", daemon=True
        )
        self._thread.start()
        return first_attempt

    def _listen(self, first_attempt: threading.Event) -> None:
        backoff = MIN_BACKOFF
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self.calls_channel)
                confirm_by = time.monotonic() + self.timeout
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=POLL_INTERVAL)
                    if message is None:
                        if confirm_by and time.monotonic() > confirm_by:
                            raise TransportError("Redis did not confirm the subscription")
                    elif message["type"] == "subscribe":
                        # Also after redis-py reconnected by itself: calls may have been missed.
                        self._subscribed()
                        first_attempt.set()
                        confirm_by = 0.0
                        backoff = MIN_BACKOFF
                    elif message["type"] == "message":
                        self._handle(message["data"])
            except self._errors as error:
                self.connected = False
                first_attempt.set()
                self._receiver.warn(
                    "redis-listener",
                    "broadcast: cannot listen on Redis %s (%s); retrying until it answers",
                    self.url,
                    error,
                )
                self._stop.wait(backoff * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not crypto)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _subscribed(self) -> None:
        """Publish what was stored while away and apply what was missed: the listener (re)subscribed."""
        self.subscriptions += 1
        if not self.connected and self.subscriptions > 1:
            LOG.info("broadcast: listening on Redis %s again", self.url)
        self.connected = True
        self._publish_pending()
        self._receiver.catch_up(self.stored())

    def _handle(self, data: bytes) -> None:
        try:
            call = Call.decode(data)
        except ValueError as error:
            self._receiver.warn("bad-call", "ignored a broadcast that is not one: %s", error)
            return
        reply = self._receiver.receive(call)
        if call.reply_to is None:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.rpush(call.reply_to, reply.encode())
                pipe.expire(call.reply_to, math.ceil(call.ttl) + ANSWERS_EXPIRY)
                pipe.execute()
        except self._errors as error:
            self._receiver.warn("reply", "cannot answer a broadcast on %s: %s", call.channel, error)

    def _publish_pending(self) -> None:
        """Publish the calls stored while Redis was away, unless a newer one took their place."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for field, call in pending.items():

            def publish_if_newest(pipe: Any, field: bytes = field, call: Call = call) -> None:
                current = pipe.hget(self.state_key, field)
                if current is not None:
                    with contextlib.suppress(ValueError):
                        if Call.decode(current).time >= call.time:
                            return
                pipe.multi()
                pipe.hset(self.state_key, field, call.encode())
                pipe.publish(self.calls_channel, call.encode())

            try:
                self._client.transaction(publish_if_newest, self.state_key)
            except self._errors:
                with self._pending_lock:
                    self._pending.setdefault(field, call)
                raise

    def listener_generation(self) -> int:
        """Return how many listener threads were started."""
        return self._generation

    def listener_alive(self) -> bool:
        """Tell whether the listener thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def restart_listener(self) -> None:
        """Start a new listener thread if the current one is dead."""
        with self._restart_lock:
            if not self.listener_alive() and not self._stop.is_set():
                self.connected = False
                self._start_thread()

    def close(self) -> None:
        """Stop the listener and close the connections."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=POLL_INTERVAL + self.timeout + 1)
        with contextlib.suppress(Exception):
            self._client.close()

    def abandon(self) -> None:
        """In a forked child: leave the parent's connections alone (redis-py checks the pid)."""
        self._stop.set()
        self._thread = None

    # Sending.

    def _publish(self, call: Call, field: bytes | None) -> int:
        data = call.encode()
        with self._client.pipeline(transaction=True) as pipe:
            if field is not None:
                pipe.hset(self.state_key, field, call.stored_form().encode())
            pipe.publish(self.calls_channel, data)
            receivers: int = pipe.execute()[-1]
        return receivers

    def send(
        self, call: Call, apply_here: Callable[[], None], expect_answers: bool, deadline: float
    ) -> list[Reply]:
        """Apply ``call`` here, publish it, and gather the answers until ``deadline`` if asked."""
        if expect_answers:
            call = dataclasses.replace(call, reply_to=self.answers_prefix + call.id)
        apply_here()
        field = None if call.key is None else _field(call.channel, call.key)
        try:
            receivers = self._publish(call, field)
        except self._errors as error:
            if field is not None:
                with self._pending_lock:
                    self._pending[field] = call.stored_form()
            self._receiver.warn(
                "redis-send",
                "broadcast: Redis %s is unreachable (%s); calls apply in this process only until it is back",
                self.url,
                error,
            )
            return []
        if call.reply_to is None:
            return []
        return self._gather(call.reply_to, call.id, receivers, deadline)

    def _gather(self, key: str, call_id: str, expected: int, deadline: float) -> list[Reply]:
        replies: list[Reply] = []
        seen: set[str] = set()
        try:
            while len(seen) < expected:
                remaining = deadline - time.monotonic()
                if remaining < 0.01:
                    break
                # BLPOP must return before the connection's own timeout fires.
                item = self._client.blpop([key], timeout=min(remaining, max(0.01, self.timeout * 0.8)))
                if item is None:
                    continue
                with contextlib.suppress(ValueError):
                    reply = Reply.decode(item[1])
                    if reply.id == call_id and reply.sender not in seen:
                        seen.add(reply.sender)
                        replies.append(reply)
        except self._errors as error:
            self._receiver.warn("redis-gather", "broadcast: lost Redis while gathering answers: %s", error)
        finally:
            with contextlib.suppress(*self._errors):
                self._client.delete(key)
        # Our own listener's reply is a skip; the others answered or not.
        if len(seen) < expected:
            self._receiver.warn("late", "broadcast: %s of %s processes answered in time", len(seen), expected)
        return replies

    # Stored calls.

    def stored(self) -> list[Call]:
        """Return the stored calls; fail at once while the listener is away (it catches up when back)."""
        if not self.connected:
            raise TransportError(f"Redis {self.url} is away")
        try:
            values = self._client.hvals(self.state_key)
        except self._errors as error:
            raise TransportError(f"Redis {self.url}: {error}") from None
        calls = []
        for value in values:
            with contextlib.suppress(ValueError):
                calls.append(Call.decode(value))
        return calls

    def forget(self, channel: str, key: str) -> None:
        """Remove a stored call."""
        field = _field(channel, key)
        with self._pending_lock:
            self._pending.pop(field, None)
        try:
            self._client.hdel(self.state_key, field)
        except self._errors as error:
            raise TransportError(f"Redis {self.url}: {error}") from None
