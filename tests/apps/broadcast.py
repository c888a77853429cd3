"""A Pyramid app for the broadcast tests: each worker holds a value that a stored broadcast sets.

- ``GET /probe/set?value=X`` broadcasts the value (stored), answers this worker's pid and value;
- ``GET /probe/get[?sleep=S]`` answers this worker's pid, value and broadcaster status (then sleeps);
- ``GET /probe/gather`` broadcasts a question and answers every worker's pid and value;
- ``GET /probe/kill-listener`` kills this worker's listener thread, as a crash would.
"""

import ctypes
import os
import threading
import time
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request

from c2cwsgiutils import broadcast

INI = """\
[app:main]
use = call:tests.apps.broadcast:factory

[loggers]
keys = root, c2cwsgiutils

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_c2cwsgiutils]
level = INFO
handlers =
qualname = c2cwsgiutils

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)s [%(name)s][%(process)d] %(message)s
"""

_STATE: dict[str, Any] = {"value": None}


def _set_value(value: str) -> dict[str, Any]:
    _STATE["value"] = value
    return {"pid": os.getpid(), "value": value}


def _who() -> dict[str, Any]:
    return {"pid": os.getpid(), "value": _STATE["value"]}


def _set(request: Request) -> dict[str, Any]:
    broadcast.broadcast("probe_value", {"value": request.params["value"]}, store=True, state_key="value")
    return _who()


def _get(request: Request) -> dict[str, Any]:
    seen = {**_who(), **broadcast.BROADCASTER.status()}
    time.sleep(float(request.params.get("sleep", "0")))  # keeps this worker busy: the next go elsewhere
    return seen


def _gather(request: Request) -> dict[str, Any]:
    timeout = float(request.params.get("timeout", "5"))
    return {"answers": broadcast.broadcast("probe_who", expect_answers=True, timeout=timeout)}


def _kill_listener(request: Request) -> dict[str, Any]:
    status = broadcast.BROADCASTER.status()
    for thread in threading.enumerate():
        if thread.name == "c2cwsgiutils-broadcast-listener" and thread.ident is not None:
            # Raise SystemExit in the thread, as a callback calling sys.exit() would.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)
            )
    return {"pid": os.getpid(), "generation": status["listener_generation"]}


def factory(global_config: dict[str, str], **settings: str) -> Any:
    """Return the WSGI app."""
    config = Configurator(settings=settings)
    config.include("c2cwsgiutils.pyramid")
    broadcast.subscribe("probe_value", _set_value)
    broadcast.subscribe("probe_who", _who)
    for name, view in {"set": _set, "get": _get, "gather": _gather, "kill-listener": _kill_listener}.items():
        config.add_route(f"probe_{name}", f"/probe/{name}")
        config.add_view(view, route_name=f"probe_{name}", renderer="json")
    return config.make_wsgi_app()
