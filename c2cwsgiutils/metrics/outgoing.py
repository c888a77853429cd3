"""Outgoing ``requests`` calls made while serving a request: a default timeout, and their metrics.

A ``requests`` call without a timeout waits forever for a dependency that hangs, and the worker
thread with it, until gunicorn kills the whole worker (``GUNICORN_TIMEOUT``) with every request it
serves. So the calls made while serving a request that set no timeout get
``C2C_REQUESTS_DEFAULT_TIMEOUT``: a hanging dependency becomes a ``requests.Timeout`` in that one
request. A call that sets its own timeout keeps it (``timeout=None`` counts as not set). Calls made
outside of a request (start-up, background threads) are left alone.

With a metrics backend on, every call is measured by :mod:`c2cwsgiutils.stats_pyramid`: an
``outgoing.{host}.{method}.{status}`` timer (a Prometheus histogram labelled ``host``, ``method``,
``status``), and ``outgoing`` in the response's ``Server-Timing``.

Both go through the one wrapper of ``requests.Session.send``
(:func:`c2cwsgiutils.request_tracking.wrap_requests`).
"""

import dataclasses

from pyramid.config import Configurator

from c2cwsgiutils import request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, parse_positive_duration, setting
from c2cwsgiutils.include import first_time


def parse_timeout(raw: str) -> float | None:
    """Parse a timeout: a positive duration, or ``off``/``none`` for no default."""
    if raw.strip().lower() in ("off", "none"):
        return None
    return parse_positive_duration(raw)


@dataclasses.dataclass(frozen=True)
class OutgoingSettings(SettingsGroup):
    """The ``requests`` calls an app makes while serving a request."""

    TITLE = "Outgoing calls"

    default_timeout: float | None = setting(
        "C2C_REQUESTS_DEFAULT_TIMEOUT",
        "c2c.requests_default_timeout",
        10.0,
        "Timeout (to connect, and between two received bytes) of the `requests` calls made while "
        "serving a request that set none; below `GUNICORN_TIMEOUT`, so that a hanging dependency "
        "fails one request instead of getting the worker killed. `off`: no default.",
        parse=parse_timeout,
        default_doc="`10s`",
    )


def includeme(config: Configurator) -> None:
    """Give the ``requests`` calls made while serving a request the default timeout."""
    if not first_time(config, "outgoing"):
        return
    timeout = OutgoingSettings.of(config).default_timeout
    request_tracking.REQUESTS_HOOKS.default_timeout = timeout
    if timeout is not None:
        request_tracking.wrap_requests()
