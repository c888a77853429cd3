"""A warning about the toolkit's own plumbing, written at most once per period of each kind.

Instrumentation must never break nor flood the host app: a dead statsd, syslog or Redis is
worth one line a minute, not one per request. The code that writes log records (the handlers
themselves) or that runs while logging is down writes on stderr; the rest goes through a logger.
"""

import logging
import sys
import threading
import time
from typing import Any

PERIOD = 60.0
"""Seconds between two warnings of the same kind."""


class RateLimitedWarning:
    """Write a warning unless one of the same ``kind`` was written less than ``period`` seconds ago.

    With a ``logger``, the warning is ``logger.warning(message, *args)``; without one, a line on
    stderr that starts with ``source`` and counts the warnings held back since the last one.
    """

    def __init__(
        self, source: str = "c2cwsgiutils", period: float = PERIOD, logger: logging.Logger | None = None
    ) -> None:
        self.source = source
        self.period = period
        self.logger = logger
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: Any, kind: str = "") -> bool:
        """Write ``message % args`` unless held back; return whether it was written."""
        with self._lock:
            now = time.monotonic()
            last = self._last.get(kind)
            if last is not None and now - last < self.period:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if self.logger is not None:
            self.logger.warning(message, *args)
            return True
        text = message % args if args else message
        more = f" ({suppressed} more since the last warning)" if suppressed else ""
        try:
            sys.stderr.write(f"{self.source}: {text}{more}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr is gone too: nothing more can be done
        return True
