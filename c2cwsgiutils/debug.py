"""The debug views, under ``{C2C_BASE_PATH}/debug/``, on when ``DEBUG_VIEW_SECRET`` is set.

- ``stacks``: every thread's stack in every worker (``?format=text`` for a plain text dump);
- ``memory``: the object types holding most memory in every worker (``?limit=N``, default 30);
- ``headers``: the request as the app sees it (after proxies, with what the server received
  under ``received``), secrets and cookies masked;
- ``sleep?time=D``: answers after ``D`` (``5``, ``1.5s``, ``250ms``), to test timeouts.

``stacks`` and ``memory`` ask every process through the broadcast (:mod:`c2cwsgiutils.broadcast`):
the workers of this gunicorn, and with ``C2C_REDIS_URL`` those of every container sharing the
Redis. So each block says which host and process it comes from, and this process's comes first.
A worker busy with a request still answers: the broadcast listens in a thread of its own.
"""

import dataclasses
import gc
import math
import os
import socket
import sys
import threading
import time
import traceback
import types
from collections import Counter
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast, client_info, request_tracking, scrub
from c2cwsgiutils.config_utils import SettingsGroup, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.metrics import memory_maps
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.request_params import ParamError, duration_param, int_param
from c2cwsgiutils.responses import json_error, json_response
from c2cwsgiutils.server.gunicorn_settings import ServerSettings

STACKS_CHANNEL = "c2c_debug_stacks"
MEMORY_CHANNEL = "c2c_debug_memory"
STACKS_TIMEOUT = 5.0
MEMORY_TIMEOUT = 30.0
DEFAULT_MEMORY_LIMIT = 30
MAX_MEMORY_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class DebugSettings(SettingsGroup):
    """The debug views."""

    TITLE = "Debug views"

    secret: str | None = setting(
        "DEBUG_VIEW_SECRET",
        "c2c.debug_view_secret",
        None,
        "Switches on `{C2C_BASE_PATH}/debug/stacks`, `debug/memory`, `debug/headers` and "
        "`debug/sleep`, and is the secret they ask for.",
        secret=True,
    )


# Upstream 6.1's switch of its debug views, a boolean (its views then ask for C2C_SECRET or a
# GitHub sign-in). Not read here: ours are on when DEBUG_VIEW_SECRET is set, and ask for it.
CONFIG_KEY = "c2c.debug_view_enabled"
ENV_KEY = "C2C_DEBUG_VIEW_ENABLED"


def _process() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "pid": os.getpid()}


# Stacks.


def dump_stacks() -> dict[str, Any]:
    """Return every thread's stack in this process: each worker's answer to the stacks broadcast."""
    threads = {thread.ident: thread for thread in threading.enumerate()}
    dumped = []
    for ident, frame in sys._current_frames().items():
        thread = threads.get(ident)
        dumped.append(
            {
                "id": ident,
                "name": thread.name if thread is not None else None,
                "daemon": thread.daemon if thread is not None else None,
                "stack": [line.rstrip("\n") for line in traceback.format_stack(frame)],
            }
        )
    dumped.sort(key=lambda entry: (entry["name"] != "MainThread", str(entry["name"])))
    return {**_process(), "threads": dumped}


def stacks_text(processes: list[dict[str, Any]]) -> str:
    """Format the stacks of every process as plain text, one block per thread."""
    blocks = []
    for process in processes:
        for thread in process["threads"]:
            where = f"host {process['hostname']}, pid {process['pid']}"
            header = f"# {where}, thread {thread['name']} ({thread['id']})"
            blocks.append("\n".join([header, *thread["stack"]]))
    return "\n\n".join(blocks) + "\n"


def stacks_view(request: Request) -> Response:
    """Answer the stacks of every thread of every process the broadcast reaches."""
    processes = broadcast.broadcast(STACKS_CHANNEL, {}, expect_answers=True, timeout=STACKS_TIMEOUT) or []
    if request.params.get("format") == "text":
        return Response(stacks_text(processes), content_type="text/plain", charset="utf-8")
    return json_response({"status": 200, "processes": processes})


# Memory.


def _type_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def memory_by_type(limit: int = DEFAULT_MEMORY_LIMIT) -> dict[str, Any]:
    """Return the ``limit`` object types holding most memory in this process (shallow sizes).

    Counted: the objects the garbage collector tracks, and the untracked ones they refer to
    directly (strings, bytes, numbers), each once.
    """
    started = time.perf_counter()
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    objects = gc.get_objects()
    seen = {id(obj) for obj in objects}
    seen.add(id(objects))

    def count(obj: Any) -> None:
        name = _type_name(type(obj))
        sizes[name] += sys.getsizeof(obj, 0)
        counts[name] += 1

    for obj in objects:
        count(obj)
    for obj in objects:
        for referent in gc.get_referents(obj):
            if id(referent) not in seen and not gc.is_tracked(referent):
                seen.add(id(referent))
                count(referent)
    del objects
    return {
        **_process(),
        "total_bytes": sum(sizes.values()),
        "objects": sum(counts.values()),
        "types": [
            {"type": name, "bytes": size, "count": counts[name]} for name, size in sizes.most_common(limit)
        ],
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }


_NOT_COUNTED = (type, types.ModuleType, types.FunctionType)


def get_size(obj: Any) -> int:
    """Return the bytes of ``obj`` and of every object it refers to, each counted once.

    For the size of a cache and the like. Follows ``gc.get_referents`` (what the garbage collector
    sees: containers' items, instances' ``__dict__``...), so cycles end and an object reached
    twice counts once. Classes, modules and plain functions are neither counted nor followed (as
    upstream): they are shared by the whole program, not owned by the value; so ``get_size`` of one
    of them is 0. Walks the whole graph: its time grows with the number of objects reached.
    """
    if isinstance(obj, _NOT_COUNTED):
        return 0
    seen: set[int] = set()
    total = 0
    pending = [obj]
    while pending:
        batch = []
        for each in pending:
            if isinstance(each, _NOT_COUNTED) or id(each) in seen:
                continue
            seen.add(id(each))
            total += sys.getsizeof(each, 0)
            batch.append(each)
        pending = gc.get_referents(*batch) if batch else []
    return total


def dump_memory_maps(pid: str = "self") -> list[dict[str, Any]]:
    """Return the memory maps of a process (``/proc/<pid>/smaps``) with a PSS, as upstream's name does.

    One ``{"name", "pss_kb", "rss_kb", "size_kb"}`` per mapped file (``""`` for anonymous memory);
    ``[]`` when the process does not exist.
    """
    try:
        maps = memory_maps.read_memory_maps(pid)
    except memory_maps.ProcessGoneError:
        return []
    return [
        {"name": name, **{f"{kind}_kb": size for kind, size in sizes.items()}}
        for name, sizes in maps.items()
        if sizes["pss"] > 0
    ]


def memory_view(request: Request) -> Response:
    """Answer the object types holding most memory, per process."""
    try:
        limit = int_param(request, "limit", DEFAULT_MEMORY_LIMIT, 1, MAX_MEMORY_LIMIT)
    except ParamError as error:
        return json_error(400, str(error), _request_id(request))
    processes = broadcast.broadcast(
        MEMORY_CHANNEL, {"limit": limit}, expect_answers=True, timeout=MEMORY_TIMEOUT
    )
    return json_response({"status": 200, "processes": processes or []})


# Headers and sleep.


def headers_view(request: Request) -> Response:
    """Echo the request as the app sees it: headers, client address, host, scheme, URL.

    Credential headers are masked by the rule Sentry events use too (:func:`scrub.is_secret_header`).
    """
    return json_response(
        {
            "status": 200,
            **_process(),
            "method": request.method,
            "url": scrub.scrub_url(request.url),
            "scheme": request.scheme,
            "host": request.host,
            "client_addr": request.client_addr,
            "headers": scrub.mask_headers(request.headers),
            # What the server saw before the trusted proxies' headers were applied, if they were.
            "received": request.environ.get(client_info.ORIGINAL),
        }
    )


class SleepView:
    """``?time=`` (seconds, or a duration such as ``250ms``): answer after that long.

    At most half of ``GUNICORN_TIMEOUT`` (a sync worker must not be killed for it), and one at a
    time per process: gunicorn never stops a thread that sleeps, so more could take every thread
    of a worker from its app and its liveness view. Another one meanwhile gets a 429.
    """

    def __init__(self, maximum: float) -> None:
        self.maximum = maximum
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        """Sleep, unless the time is out of range or another sleep runs in this process."""
        try:
            seconds = duration_param(request, "time", None, self.maximum)
        except ParamError as error:
            return json_error(400, str(error), _request_id(request))
        if not self.lock.acquire(blocking=False):
            response = json_error(429, "another debug/sleep is running in this process", _request_id(request))
            response.headers["Retry-After"] = str(math.ceil(self.maximum))
            return response
        try:
            time.sleep(seconds)
        finally:
            self.lock.release()
        return json_response({"status": 200, **_process(), "slept_seconds": seconds})


def _request_id(request: Request) -> str | None:
    return request_tracking.request_id(request)


def includeme(config: Configurator) -> None:
    """Add the debug views when ``DEBUG_VIEW_SECRET`` is set."""
    if not first_time(config, "debug"):
        return
    secret = DebugSettings.declaration("secret")
    stacks_path = add_ops_view(
        config, "debug_stacks", "/debug/stacks", stacks_view, secret=secret, request_method="GET"
    )
    if stacks_path is None:
        return
    add_ops_view(config, "debug_memory", "/debug/memory", memory_view, secret=secret, request_method="GET")
    add_ops_view(
        config, "debug_headers", "/debug/headers", headers_view, secret=secret, request_method=("GET", "POST")
    )
    sleep_view = SleepView(ServerSettings.resolve(None).timeout / 2)
    add_ops_view(config, "debug_sleep", "/debug/sleep", sleep_view, secret=secret, request_method="GET")
    config.include("c2cwsgiutils.broadcast")
    broadcast.subscribe(STACKS_CHANNEL, dump_stacks)
    broadcast.subscribe(MEMORY_CHANNEL, memory_by_type)


def init(config: Configurator) -> None:
    """Include the feature: upstream's older name; prefer ``config.include("c2cwsgiutils.debug")``."""
    config.include(includeme)
