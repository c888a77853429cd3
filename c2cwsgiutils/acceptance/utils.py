"""Helpers for acceptance tests: retry a call until it succeeds, wait for a URL, start-and-close.

Also the original's names: ``retry_timeout(what, timeout, interval)``, ``wait_url(url, timeout)``,
``DEFAULT_TIMEOUT``, ``in_docker()`` and ``skipIfCI``.
"""

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import requests

T = TypeVar("T")
LOG = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 60.0
"""Seconds the original's helpers waited by default."""


class RetryTimeoutError(TimeoutError, AssertionError):
    """:func:`retry_timeout` gave up: a :class:`TimeoutError`, and the original's AssertionError."""


def in_docker() -> bool:
    """Tell whether the tests run in a container (``DOCKER_RUN=1``), as the original's suites said so."""
    return os.environ.get("DOCKER_RUN", "0") == "1"


if TYPE_CHECKING:
    import pytest

    skipIfCI: pytest.MarkDecorator  # noqa: N816 (the original's name)
    """Skip a test when ``IN_CI=1``."""
else:

    def __getattr__(name: str) -> Any:
        """Make ``skipIfCI`` on first use, so that importing this module does not import pytest."""
        if name == "skipIfCI":
            import pytest  # noqa: PLC0415

            marker = pytest.mark.skipif(os.environ.get("IN_CI", "0") == "1", reason="Not running on CI")
            globals()[name] = marker
            return marker
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BackgroundService(ABC):
    """Something a test starts and closes: ``with Thing(...) as thing:`` does both.

    If :meth:`start` fails, what it started so far is closed before the error goes on.
    """

    @abstractmethod
    def start(self) -> Self:
        """Start it and return it, ready."""

    @abstractmethod
    def close(self) -> None:
        """Stop it and free what it holds; harmless when not started."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def retry(
    func: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    exceptions: tuple[type[BaseException], ...] = (Exception,),
    what: str | None = None,
) -> T:
    """Call ``func`` until it returns without raising one of ``exceptions``; return its result.

    After ``timeout`` seconds the last error is raised again inside a :class:`TimeoutError` naming
    ``what`` (or the function), so a test failure says what was awaited and why it never came.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            return func()
        except exceptions as error:
            if time.monotonic() + interval > deadline:
                name = what or getattr(func, "__qualname__", repr(func))
                raise TimeoutError(
                    f"{name}: still failing after {timeout:g}s ({attempts} attempts): "
                    f"{type(error).__name__}: {error}"
                ) from error
        time.sleep(interval)


def retry_timeout(what: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.5) -> T:
    """Call ``what`` until it returns a true value, and return it (the original's retry).

    An exception counts as a failed attempt. After ``timeout`` seconds :class:`RetryTimeoutError`
    says how many attempts failed, and the last error.
    """
    name = getattr(what, "__qualname__", repr(what))
    deadline = time.monotonic() + timeout
    attempts = 0
    last = "it returned a false value"
    while True:
        attempts += 1
        try:
            result = what()
            if result:
                return result
            last = f"it returned {result!r}"
        except Exception as error:
            last = f"{type(error).__name__}: {error}"
            LOG.info("%s failed: %s", getattr(what, "__qualname__", repr(what)), last)
        if time.monotonic() + interval > deadline:
            name = getattr(what, "__qualname__", repr(what))
            raise RetryTimeoutError(f"{name}: no success after {timeout:g}s ({attempts} attempts), {last}")
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], T], timeout: float = 30.0, what: str = "the condition", *, interval: float = 0.1
) -> T:
    """Return the first true value of ``predicate()``; raise :class:`TimeoutError` after ``timeout``.

    ``what`` names the awaited condition in the error.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() + interval > deadline:
            raise TimeoutError(f"{what}: not true after {timeout:g}s")
        time.sleep(interval)


def wait_url(
    url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    interval: float = 0.2,
    expected_status: Collection[int] = range(200, 300),
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Wait until a GET of ``url`` answers with an expected status; return that response.

    Connection errors and other statuses are retried; the :class:`TimeoutError` after ``timeout``
    says what the last attempt got.
    """

    def attempt() -> requests.Response:
        response = requests.get(url, headers=headers, timeout=max(1.0, min(10.0, timeout)))
        if response.status_code not in expected_status:
            raise AssertionError(f"status {response.status_code}: {response.text[:200]!r}")
        return response

    return retry(
        attempt,
        timeout=timeout,
        interval=interval,
        exceptions=(requests.RequestException, AssertionError),
        what=f"GET {url}",
    )


def approx(struct: Any, **kwargs: Any) -> Any:
    """Return ``struct`` with every float in it, however deep, as ``pytest.approx(value, **kwargs)``.

    Upstream 6.1's helper, for a structure of computed numbers (a JSON answer):
    ``assert response.json() == approx(expected, rel=1e-3)``. Dicts (any mapping, given back as a
    dict), lists and tuples (a named tuple keeps its type) are copied with their floats replaced;
    any other value, and a float inside a set, is compared exactly.
    """
    import pytest  # noqa: PLC0415 (importing this module does not import pytest)

    def visit(value: Any) -> Any:
        if isinstance(value, float):
            return pytest.approx(value, **kwargs)
        if isinstance(value, Mapping):
            return {key: visit(item) for key, item in value.items()}
        if isinstance(value, list):
            return [visit(item) for item in value]
        if isinstance(value, tuple):
            items = [visit(item) for item in value]
            return value._make(items) if hasattr(value, "_make") else tuple(items)
        return value

    return visit(struct)
