"""The Redis channel: every process of every container sharing ``C2C_REDIS_URL`` (or the Sentinels' master).

Keys, all under the prefix ``C2C_BROADCAST_PREFIX``:

- ``<prefix>:calls``, a pub/sub channel: each call is published there as JSON (a
  :class:`~.core.Call`). Every process's listener thread subscribes to it.
- ``<prefix>:answers:<call id>``, a list: the processes push their JSON :class:`~.core.Reply` there
  when the call asks for answers (with an expiry); ``PUBLISH`` returned how many processes
  received the call, so the sender knows how many replies to wait for.
- ``<prefix>:state``, a hash: the stored calls, one field per channel and state key. A stored
  call is written and published in one optimistic transaction (``WATCH``), and only over an older
  one of its key: a call queued while Redis was away, or an attempt that a stalled Redis carries
  out late, never replaces a newer call. A fresh call is newer by definition; it takes a time just
  after the stored one's when that one came from a clock ahead of its own.

A request waits for Redis at most :data:`REQUEST_TIMEOUT` per step (the connection, each
command), and not at all while Redis is known to be away: a stored call that does not get through
is applied in the calling process and queued, a call that is not stored reaches that process only.

The listener loops: connect, subscribe, send the queued calls, apply the stored calls it has not
applied yet, then handle calls. It pings Redis on its subscription after :data:`PING_INTERVAL`
without a message (at once when a request found Redis away or calls are queued): a subscription
that goes silent (a paused Redis, a connection dropped without a reset) counts as lost after the
Redis timeout, and one that answers again has the queued calls sent and the missed ones applied.
When Redis is away it warns (at most once a minute) and reconnects with a growing delay (0.1 s,
doubling up to 2 s), so a Redis that comes back is used again without a restart, and the calls
stored meanwhile reach every process exactly once. Through Sentinel
(:mod:`c2cwsgiutils.broadcast.redis_connection`), each reconnection asks the Sentinels for the master: after
a failover the listener subscribes on the new master, sends what was queued meanwhile and applies
what it missed.
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
from c2cwsgiutils.broadcast.redis_connection import RedisTarget, make_client, safe_url

__all__ = ["RedisTransport", "safe_url"]

POLL_INTERVAL = 0.5
"""Seconds the listener waits for a message before checking its connection and whether it should stop."""
MIN_BACKOFF = 0.1
MAX_BACKOFF = 2.0
ANSWERS_EXPIRY = 10
"""Seconds a list of answers outlives the time its sender waits for them."""
PING_INTERVAL = 1.0
"""Seconds without a message after which the listener checks that Redis still answers."""
REQUEST_TIMEOUT = 0.5
"""The longest a request waits for Redis per step (connecting, a command); the Redis timeout if less."""
MAX_QUEUED = 1000
"""Stored calls (state keys) queued while Redis is away; beyond it the oldest are dropped, with a warning."""
WATCH_ATTEMPTS = 10
"""Tries of a transaction that other processes' changes to the stored calls interrupt."""
_PING = "c2cwsgiutils-broadcast-ping"


def _field(channel: str, key: str) -> bytes:
    return orjson.dumps([channel, key])


def _decoded(value: bytes | None) -> Call | None:
    if value is None:
        return None
    try:
        return Call.decode(value)
    except ValueError:
        return None  # not ours: replaced


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
        self.request_timeout = min(timeout, REQUEST_TIMEOUT)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError, TransportError)
        self._watch_error: type[Exception] = redis.WatchError

        def client(seconds: float) -> Any:
            # One retry, on a connection that Redis closed (a restart, a failover): its first
            # command fails. Not on a timeout: a stalled Redis would only make it wait twice.
            retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            return make_client(target, seconds, socket_keepalive=True, health_check_interval=10, retry=retry)

        self._client: Any = client(timeout)  # the listener's: subscription, catch-up, answers, queued calls
        self._requests: Any = client(self.request_timeout)  # what requests wait for
        self.calls_channel = f"{prefix}:calls"
        self.state_key = f"{prefix}:state"
        self.answers_prefix = f"{prefix}:answers:"
        self.connected = False  # the listener hears Redis, and no request found it away since
        self.subscriptions = 0  # how many times the listener (re)subscribed
        self._was_connected = False
        self._queue: dict[bytes, Call] = {}  # stored calls that did not get through yet
        self._queue_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._backoff = MIN_BACKOFF  # before the listener's next connection attempt
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
        self._backoff = MIN_BACKOFF
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self.calls_channel)
                self._follow(pubsub, first_attempt)
            except self._errors as error:
                self.connected = False
                first_attempt.set()
                self._receiver.warn(
                    "broadcast: cannot listen on Redis %s (%s); retrying until it answers",
                    self.url,
                    error,
                    kind="redis-listener",
                )
                self._stop.wait(self._backoff * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not crypto)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _follow(self, pubsub: Any, first_attempt: threading.Event) -> None:
        """Handle what comes on the subscription until stopped; raise when Redis stops answering."""
        now = time.monotonic()
        confirm_by: float | None = now + self.timeout
        heard = now
        pinged: float | None = None
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=POLL_INTERVAL)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, None
                if message["type"] == "subscribe":
                    # Also after redis-py reconnected by itself: calls may have been missed.
                    self.subscriptions += 1
                    confirm_by = None
                    self._backoff = MIN_BACKOFF
                    self._back()
                    first_attempt.set()
                elif message["type"] == "message":
                    self._handle(message["data"])
                elif message["type"] == "pong" and (not self.connected or self._queue):
                    self._back()  # Redis answers again
            if confirm_by is not None:
                if now > confirm_by:
                    raise TransportError(f"Redis did not confirm the subscription within {self.timeout}s")
            elif pinged is not None:
                if now - pinged > self.timeout:
                    raise TransportError(f"Redis did not answer within {self.timeout}s")
            elif now - heard > PING_INTERVAL or not self.connected or self._queue:
                pubsub.ping(_PING)
                pinged = now

    def _back(self) -> None:
        """Redis answers (again): send the calls queued meanwhile, then apply what this process missed."""
        if not self.connected and self._was_connected:
            LOG.info("broadcast: Redis %s answers again", self.url)
        self.connected = self._was_connected = True
        self._send_queued()
        self._receiver.catch_up(self._read_stored(self._client))

    def _handle(self, data: bytes) -> None:
        try:
            call = Call.decode(data)
        except ValueError as error:
            self._receiver.warn("ignored a broadcast that is not one: %s", error, kind="bad-call")
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
            self._receiver.warn("cannot answer a broadcast on %s: %s", call.channel, error, kind="reply")

    def _enqueue(self, field: bytes, call: Call) -> None:
        with self._queue_lock:
            self._queue.pop(field, None)  # the newer call of a key goes to the end
            self._queue[field] = call
            dropped = 0
            while len(self._queue) > MAX_QUEUED:
                del self._queue[next(iter(self._queue))]
                dropped += 1
        if dropped:
            self._receiver.warn(
                "broadcast: more than %s stored calls wait for Redis %s; dropped the oldest",
                MAX_QUEUED,
                self.url,
                kind="queue-full",
            )

    def _send_queued(self) -> None:
        """Send the calls queued while Redis was away, unless a newer one of their key is stored."""
        with self._queue_lock:
            queued, self._queue = self._queue, {}
        items = list(queued.items())
        for index, (field, call) in enumerate(items):
            try:
                self._store_and_publish(self._client, call, field, fresh=False)
            except self._errors:
                with self._queue_lock:
                    for left_field, left_call in items[index:]:
                        self._queue.setdefault(left_field, left_call)  # a call queued meanwhile is newer
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
        for client in (self._client, self._requests):
            with contextlib.suppress(Exception):
                client.close()

    def abandon(self) -> None:
        """In a forked child: leave the parent's connections alone (redis-py checks the pid)."""
        self._stop.set()
        self._thread = None

    # Sending.

    def _store_and_publish(self, client: Any, call: Call, field: bytes, *, fresh: bool) -> int:
        """Store ``call`` under ``field`` and publish it in one transaction; return how many got it.

        Only over an older call of the key: a ``fresh`` call is newer by definition (it takes a time
        just after the stored one's if needed); any other is dropped, and 0 returned.
        """
        with client.pipeline(transaction=True) as pipe:
            for _ in range(WATCH_ATTEMPTS):
                try:
                    pipe.watch(self.state_key)
                    current = _decoded(pipe.hget(self.state_key, field))
                    if current is not None and current.time >= call.time:
                        if not fresh:
                            return 0
                        call = dataclasses.replace(call, time=current.time + 0.001)
                    pipe.multi()
                    pipe.hset(self.state_key, field, call.stored_form().encode())
                    pipe.publish(self.calls_channel, call.encode())
                    receivers: int = pipe.execute()[-1]
                    return receivers
                except self._watch_error:
                    continue  # another process changed the stored calls meanwhile
        raise TransportError("the stored calls kept changing")

    def send(
        self, call: Call, apply_here: Callable[[], None], expect_answers: bool, deadline: float
    ) -> list[Reply]:
        """Apply ``call`` here, publish it, and gather the answers until ``deadline`` if asked.

        Never waits for Redis more than the request timeout per step, and not at all while it is
        known to be away: a stored call is then queued for the listener to send.
        """
        if expect_answers:
            call = dataclasses.replace(call, reply_to=self.answers_prefix + call.id)
        apply_here()
        field = None if call.key is None else _field(call.channel, call.key)
        try:
            if not self.connected:
                raise TransportError("it does not answer the listener")
            if field is None:
                receivers: int = self._requests.publish(self.calls_channel, call.encode())
            else:
                receivers = self._store_and_publish(self._requests, call, field, fresh=True)
        except self._errors as error:
            if field is not None:
                self._enqueue(field, call.stored_form())
            self.connected = False  # the listener checks it, and sends the queue when it answers
            self._receiver.warn(
                "broadcast: Redis %s is unreachable (%s); calls apply in this process only, "
                "and the stored ones reach the others when it answers again",
                self.url,
                error,
                kind="redis-send",
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
            self._receiver.warn(
                "broadcast: lost Redis while gathering answers: %s", error, kind="redis-gather"
            )
        finally:
            with contextlib.suppress(*self._errors):
                self._client.delete(key)
        # Our own listener's reply is a skip; the others answered or not.
        if len(seen) < expected:
            self._receiver.warn(
                "broadcast: %s of %s processes answered in time", len(seen), expected, kind="late"
            )
        return replies

    # Stored calls.

    def _read_stored(self, client: Any) -> list[Call]:
        try:
            values = client.hvals(self.state_key)
        except self._errors as error:
            raise TransportError(f"Redis {self.url}: {error}") from None
        return [call for call in map(_decoded, values) if call is not None]

    def stored(self) -> list[Call]:
        """Return the stored calls; fail at once if Redis is away, within the request timeout if stalled."""
        if not self.connected:
            raise TransportError(f"Redis {self.url} is away")
        try:
            return self._read_stored(self._requests)
        except TransportError:
            self.connected = False
            raise

    def queued(self) -> list[Call]:
        """Return the stored calls that did not get through to Redis yet."""
        with self._queue_lock:
            return list(self._queue.values())

    def forget(self, channel: str, key: str, params: dict[str, Any] | None = None) -> None:
        """Remove a stored call (only if its parameters are ``params``, when given)."""
        field = _field(channel, key)
        with self._queue_lock:
            queued = self._queue.get(field)
            if queued is not None and (params is None or queued.params == params):
                del self._queue[field]
        if not self.connected:
            raise TransportError(f"Redis {self.url} is away")
        try:
            if params is None:
                self._requests.hdel(self.state_key, field)
                return
            with self._requests.pipeline(transaction=True) as pipe:
                for _ in range(WATCH_ATTEMPTS):
                    try:
                        pipe.watch(self.state_key)
                        current = _decoded(pipe.hget(self.state_key, field))
                        if current is None or current.params != params:
                            return
                        pipe.multi()
                        pipe.hdel(self.state_key, field)
                        pipe.execute()
                        return
                    except self._watch_error:
                        continue
        except self._errors as error:
            self.connected = False
            raise TransportError(f"Redis {self.url}: {error}") from None
