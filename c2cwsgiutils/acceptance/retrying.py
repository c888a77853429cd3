"""Upstream 6.1's ``retry`` decorator: call a function again while it raises, waiting longer each time.

```python
from c2cwsgiutils.acceptance import retry


@retry(requests.ConnectionError, tries=5, delay=1)
def get_status() -> int: ...
```

The package ``c2cwsgiutils.acceptance`` names it, as upstream's does.
:func:`c2cwsgiutils.acceptance.utils.retry` is ours: a call, with a deadline rather than a count.
"""

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeAlias, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Exceptions: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]
LOG = logging.getLogger(__name__)


def retry(
    exception_to_check: Exceptions, tries: float = 3, delay: float = 0.5, backoff: float = 2
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Return a decorator: call the function up to ``tries`` times while it raises ``exception_to_check``.

    ``exception_to_check`` is an exception class or a tuple of them; any other exception goes
    straight to the caller, and so does the last attempt's. Before each new attempt it logs a
    warning and sleeps ``delay`` seconds, then ``delay * backoff``, ``delay * backoff**2``... (0.5,
    1, 2 s by default). ``tries`` of 1 or less means a single call.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = getattr(func, "__qualname__", repr(func))

        @functools.wraps(func)
        def retried(*args: P.args, **kwargs: P.kwargs) -> R:
            left = tries
            wait = delay
            while left > 1:
                try:
                    return func(*args, **kwargs)
                except exception_to_check as error:
                    LOG.warning(
                        "%s failed (%s: %s), retrying in %gs", name, type(error).__name__, error, wait
                    )
                    time.sleep(wait)
                    left -= 1
                    wait *= backoff
            return func(*args, **kwargs)

        return retried

    return decorate
