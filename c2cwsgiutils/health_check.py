"""Health checks: ``{C2C_BASE_PATH}/health_check`` runs the app's checks, ``{C2C_BASE_PATH}/health`` none.

The app makes a :class:`HealthCheck` in its WSGI main and adds its checks (databases, alembic
migrations, URLs, its own functions); a request of ``{C2C_BASE_PATH}/health_check?max_level=N``
runs those of level N or less (default 1) concurrently, each with its own timeout, and answers
``{"status": 200|500, "successes": [...], "failures": {name: {"message": ...}}}``.

``{C2C_BASE_PATH}/health`` (switched on by ``c2cwsgiutils.pyramid``) touches no dependency: it
says that a worker answers, for a container ``HEALTHCHECK`` or a Kubernetes liveness probe.
"""

import collections
import concurrent.futures
import contextvars
import dataclasses
import enum
import logging
import math
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import requests
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from c2cwsgiutils import broadcast, extras, request_tracking, scrub
from c2cwsgiutils.broadcast import redis_connection
from c2cwsgiutils.config_utils import SettingsGroup, parse_positive_duration, setting
from c2cwsgiutils.database.maintenance import MAINTENANCE
from c2cwsgiutils.errors import ErrorsSettings
from c2cwsgiutils.include import first_time
from c2cwsgiutils.ops_views import add_ops_view
from c2cwsgiutils.request_params import ParamError, int_param
from c2cwsgiutils.responses import json_error, json_response
from c2cwsgiutils.server.gunicorn_settings import ServerSettings, local_address

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, scoped_session, sessionmaker

    from c2cwsgiutils.database.routing import Router

LOG = logging.getLogger(__name__)
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+.^_`|~-]")
MAX_MESSAGE = 300
"""Characters of a failure's message in production."""
MAX_LEVEL = 1000
"""The highest ``max_level`` a request may ask for."""


@dataclasses.dataclass(frozen=True)
class HealthCheckSettings(SettingsGroup):
    """The health checks."""

    TITLE = "Health checks"

    timeout: float = setting(
        "C2C_HEALTH_CHECK_TIMEOUT",
        "c2c.health_check_timeout",
        5.0,
        "How long one check of `{C2C_BASE_PATH}/health_check` may take before it fails as timed out "
        "(a duration; a check can set its own). The checks run concurrently: the answer takes about "
        "the longest check, at most the longest timeout.",
        parse=parse_positive_duration,
        default_doc="`5s`",
    )
    base_url: str | None = setting(
        "C2C_HEALTH_CHECK_BASE_URL",
        "c2c.health_check_base_url",
        None,
        "The app's own address, for the URL checks given as a function (`lambda request: "
        'request.route_url("ping")`): they get a request on this address, never the client\'s '
        "(whose `Host` would choose the server to call).",
        default_doc="`http://` + the first TCP address of `GUNICORN_BIND` (`0.0.0.0` as `127.0.0.1`)",
    )


def scrub_message(text: str) -> str:
    """Remove secrets from a check's message: URL passwords and secret-looking query parameters."""
    return scrub.scrub_text(scrub.mask_url_passwords(text))


def public_message(error: BaseException) -> str:
    """Return what a failure tells a client in production: the first line of the driver's message.

    SQLAlchemy's text adds the statement and its parameters (the error views never show them);
    a URL names a user, a host, a database: all of it stays in the log.
    """
    original = getattr(error, "orig", None)  # a DBAPIError's driver exception
    text = str(original if isinstance(original, BaseException) else error).strip()
    first = text.splitlines()[0].strip() if text else type(error).__name__
    return scrub.mask_urls(scrub_message(first))[:MAX_MESSAGE]


def _local_base_url() -> str:
    """Return ``http://`` and the first TCP address the server listens on (``GUNICORN_BIND``)."""
    try:
        host, port = local_address(ServerSettings.resolve(None).bind)
    except ValueError:
        return "http://127.0.0.1:8080"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


MAX_RESULT_BYTES = 64 * 1024
"""The largest ``result`` a failure carries (:class:`JsonCheckException`), in bytes of JSON."""
MAX_RESULT_DEPTH = 32
"""The deepest nesting of lists and objects a failure's ``result`` may have."""


class JsonCheckException(Exception):  # noqa: N818 (upstream's name)
    """A check's failure that carries JSON data: the report shows it as the failure's ``result``.

    ``message`` is the failure's message; ``json`` any value orjson can encode (dicts, lists,
    strings, numbers...). Its strings are scrubbed of secrets; a value that is too large
    (:data:`MAX_RESULT_BYTES`), too deep or cannot be encoded is left out, and the failure says why
    under ``result_omitted``.
    """

    def __init__(self, message: str, json: Any) -> None:
        super().__init__(message)
        self.message = message
        self.json = json

    def __str__(self) -> str:
        return self.message

    def json_data(self) -> Any:
        """Return the data the failure carries."""
        return self.json


def _scrubbed(value: Any, clean: Callable[[str], str], depth: int = 0) -> Any:
    """Return a copy of ``value`` with every string cleaned; raise ValueError when it is too deep."""
    if depth > MAX_RESULT_DEPTH:
        raise ValueError(f"nested deeper than {MAX_RESULT_DEPTH} levels")
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {
            (clean(key) if isinstance(key, str) else key): _scrubbed(item, clean, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(item, clean, depth + 1) for item in value]
    return value


def _public_text(text: str) -> str:
    return scrub.mask_urls(scrub_message(text))


def failure_result(error: JsonCheckException, development: bool = False) -> dict[str, Any]:
    """Return what a :class:`JsonCheckException` adds to its failure: ``result``, or ``result_omitted``.

    Its strings are scrubbed of secrets and, but in development, of URLs, as the failure's
    message is. Never raises: a result that cannot be shown is left out, with the reason.
    """
    data = error.json_data()
    if data is None:
        return {}
    try:
        result = _scrubbed(data, scrub_message if development else _public_text)
        size = len(orjson.dumps(result))
    except (ValueError, TypeError, RecursionError) as problem:  # orjson.JSONEncodeError is a TypeError
        return {"result_omitted": f"the check's JSON cannot be encoded: {problem}"[:MAX_MESSAGE]}
    if size > MAX_RESULT_BYTES:
        return {"result_omitted": f"the check's JSON is {size} bytes, more than {MAX_RESULT_BYTES}"}
    return {"result": result}


class CheckTimeoutError(Exception):
    """A check did not finish within its timeout."""


class CheckSkippedError(Exception):
    """A check that does not apply now (the primary during maintenance): neither a success nor a failure."""


MAINTENANCE_SKIP = "read-only database maintenance"
REDIS_CHECK = "redis"
"""The Redis check added when Redis is configured (:meth:`HealthCheck.add_redis_check` renames it)."""
VERSION_CHANNEL = "c2c_health_check_version"
"""The broadcast channel on which each process answers its version (:meth:`HealthCheck.add_version_check`)."""


@dataclasses.dataclass
class _Check:
    name: str
    level: int
    timeout: float
    run: Callable[[Request], Any]
    # A check that reads the request (the app's own) shares a run only with the same request input.
    uses_request: bool = True


MAX_RUNS_IN_FLIGHT = 4
"""Runs of one check that reads the request, with different inputs, in flight at once."""


class CheckBusyError(Exception):
    """Too many runs of a check that reads the request are in flight (its dependency hangs)."""


class EngineType(enum.Enum):
    """Which engines of a session :meth:`HealthCheck.add_db_session_check` checks (upstream 6.1's values)."""

    READ_ONLY = 1
    """The replica (the primary when there is no replica)."""
    WRITE_ONLY = 2
    """The primary."""
    READ_AND_WRITE = 3
    """Both, each as its own check (the default)."""


@dataclasses.dataclass
class _Outcome:
    name: str
    duration: float
    error: BaseException | None = None


class HealthCheck:
    """The checks of ``{C2C_BASE_PATH}/health_check``; make one in the app's WSGI main.

    Each check has a level (the request's ``max_level``, default 1, selects those at or below it)
    and a timeout (``C2C_HEALTH_CHECK_TIMEOUT`` unless given). A check fails when it raises or
    times out. A check still running from an earlier request (it hung) is not started again: the
    new request waits for the same run, so a hanging dependency holds at most one thread per check.
    With ``C2C_REDIS_URL`` or ``C2C_REDIS_SENTINELS`` set, a ``redis`` check (a PING of the
    current master) is added at level 1.
    """

    def __init__(self, config: Configurator) -> None:
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()
        self._running: dict[str, tuple[concurrent.futures.Future[Any], float]] = {}
        settings = HealthCheckSettings.of(config)
        self.default_timeout = settings.timeout
        self._base_url = settings.base_url or _local_base_url()
        self._development = ErrorsSettings.of(config).development
        self._registry = config.registry
        self._config = config  # for the features a check needs (the broadcast of the version check)
        config.include("c2cwsgiutils.health_check")
        add_ops_view(config, "health_check", "/health_check", self.view, request_method=("GET", "HEAD"))
        from c2cwsgiutils.broadcast import BroadcastSettings  # noqa: PLC0415

        self._redis_target = broadcast.configured_target(config)
        self._redis_timeout = BroadcastSettings.of(config).redis_timeout
        if self._redis_target is not None:
            self._add_redis_check(self._redis_target, self._redis_timeout)

    # Adding checks.

    def add_check(
        self,
        name: str,
        check_cb: Callable[[Request], Any],
        level: int = 1,
        timeout: float | None = None,
        *,
        uses_request: bool = True,
    ) -> None:
        """Add a check: ``check_cb(request)`` fails by raising; its return value is ignored.

        A run of it is shared by the requests that come while it runs with the same query string
        and ``Host``; ``uses_request=False`` (a check that ignores the request) shares it with all.
        """
        if name in self._checks:
            raise ValueError(f"there is already a health check named {name!r}")
        self._checks[name] = _Check(
            name, level, self.default_timeout if timeout is None else timeout, check_cb, uses_request
        )

    def add_custom_check(
        self, name: str, check_cb: Callable[[Request], Any], level: int = 1, timeout: float | None = None
    ) -> None:
        """Add the app's own check (the spec's name for :meth:`add_check`)."""
        self.add_check(name, check_cb, level, timeout)

    def add_url_check(
        self,
        url: str | Callable[[Request], str],
        name: str | None = None,
        check_cb: Callable[[Request, requests.Response], Any] | None = None,
        timeout: float = 3,
        level: int = 1,
        *,
        params: "Mapping[str, str] | Callable[[Request], Mapping[str, str]] | None" = None,
        headers: "Mapping[str, str] | Callable[[Request], Mapping[str, str]] | None" = None,
    ) -> None:
        """Check that a GET of ``url`` (or of ``url(request)``) answers below 400, then passes ``check_cb``.

        ``params`` (the query) and ``headers``, each a mapping or a function of the request, are
        upstream 6.1's keywords (c2cgeoportal's checker passes both); keyword-only, since the
        original's third positional argument is ``check_cb``.

        An error status (4xx, 5xx) fails the check before ``check_cb`` is called, as the
        original's did: ``check_cb`` adds to the status check, never replaces it. The check is
        named by its URL unless ``name`` is given (needed when ``url`` is a function).
        ``timeout`` is the request's and the check's.

        A function gets, and ``check_cb`` too, a request of the app's own on its internal address
        (``C2C_HEALTH_CHECK_BASE_URL``), never the client's: ``request.route_url`` of the client's
        request would call whatever host its ``Host`` header names.
        """
        if name is None:
            if not isinstance(url, str):
                raise ValueError("a URL check whose URL is a function needs a name")
            name = url

        def check(request: Request) -> None:
            internal = self._internal_request()
            target = url if isinstance(url, str) else url(internal)
            query = params(internal) if callable(params) else params
            sent_headers = headers(internal) if callable(headers) else headers
            response = requests.get(target, params=query, headers=sent_headers, timeout=timeout)
            response.raise_for_status()
            if check_cb is not None:
                check_cb(internal, response)

        self.add_check(name, check, level, timeout, uses_request=False)

    def _internal_request(self) -> Request:
        """Return a request of the app's own, on its internal address (for the URL checks)."""
        request = Request.blank("/", base_url=self._base_url)
        request.registry = self._registry
        return request

    def add_db_session_check(
        self,
        session: "scoped_session[Session] | sessionmaker[Session]",
        query_cb: "Callable[[Session], Any] | None" = None,
        at_least_one_model: Any = None,
        level: int = 1,
        timeout: float | None = None,
        *,
        engine_type: EngineType = EngineType.READ_AND_WRITE,
    ) -> None:
        """Add one check per engine of a ``setup_session`` session, named ``db_engine_<prefix>``.

        ``session`` may also be the sessionmaker of ``setup_request_session``. Each check runs
        ``query_cb(session)`` (default: ``SELECT 1``) on its engine and, with
        ``at_least_one_model``, fails when that model's table has no row. The replica's check
        fails while the replica does not answer, even though reads then go to the primary.
        ``engine_type`` (upstream 6.1's keyword; keyword-only here, as ``timeout`` is fifth) checks
        the primary only (``WRITE_ONLY``) or the replica only (``READ_ONLY``); a session without
        a replica has one check either way.
        """
        extras.require("sqlalchemy", "db", "the database health check")
        router = _router_of(session)
        check_session = _check_session(router)
        engines = self._engines_of(router)
        has_replica = len(engines) > 1
        wanted = {
            EngineType.READ_AND_WRITE: engines,
            EngineType.WRITE_ONLY: engines[:1],
            EngineType.READ_ONLY: engines[-1:],
        }[engine_type]
        for prefix, engine in wanted:
            # With a replica, the primary is not used during read-only maintenance: not checked.
            skip_in_maintenance = has_replica and engine is engines[0][1]
            self.add_check(
                f"db_engine_{prefix}",
                _DbCheck(check_session, engine, query_cb, at_least_one_model, skip_in_maintenance),
                level,
                timeout,
                uses_request=False,
            )

    def add_alembic_check(
        self,
        session: "scoped_session[Session] | sessionmaker[Session]",
        alembic_ini_path: str,
        level: int = 2,
        version_schema: str | None = None,
        version_table: str | None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Check that every engine of the session is at the head revision of the alembic scripts.

        Named ``alembic_<path>`` with ``/`` replaced by ``_`` (``alembic_app_alembic.ini`` for
        ``/app/alembic.ini``). A relative path is taken from the current directory, now.
        ``name`` is the ini file's section (upstream 6.1's keyword, ``alembic`` when not given, as
        alembic's ``--name``); when given, the check's name ends with ``_<name>``, so that one file
        can hold several migrations (c2cgeoportal's ``main`` and ``static``).
        ``version_schema`` and ``version_table`` default to the section's ``version_table_schema``
        and ``version_table`` options, else alembic's ``alembic_version``.
        """
        extras.require("alembic", "alembic", "the alembic health check")
        # Keyword-only: the original's fourth positional argument is version_schema, 6.1's is name.
        check_name = "alembic_" + alembic_ini_path.replace("/", "_").strip("_")
        if name is not None:
            check_name += "_" + name
        ini_path = os.path.abspath(alembic_ini_path)
        if not os.path.isfile(ini_path):
            raise FileNotFoundError(f"the alembic configuration {ini_path} does not exist")
        engines = self._engines_of(_router_of(session))
        self.add_check(
            check_name,
            _AlembicCheck(ini_path, name or "alembic", engines, version_schema, version_table),
            level,
            timeout,
            uses_request=False,
        )

    def add_redis_check(self, name: str | None = None, level: int = 1, timeout: float | None = None) -> None:
        """Check that the toolkit's Redis answers a ``PING`` (a later upstream name).

        The check is there as soon as ``C2C_REDIS_URL`` or ``C2C_REDIS_SENTINELS`` is set (named
        ``redis``, level 1): this call gives it a name and a level. Unlike upstream, ``name``
        defaults to ``redis``, not to the URL, which may hold a password. Without Redis, a
        RuntimeError, as upstream's.
        """
        if self._redis_target is None:
            raise RuntimeError("no Redis to check: set C2C_REDIS_URL or C2C_REDIS_SENTINELS")
        self._checks.pop(REDIS_CHECK, None)  # the automatic one: one check of the same Redis
        self._add_redis_check(self._redis_target, self._redis_timeout, name or REDIS_CHECK, level, timeout)

    def _add_redis_check(
        self,
        redis_target: redis_connection.RedisTarget,
        redis_timeout: float,
        name: str = REDIS_CHECK,
        level: int = 1,
        timeout: float | None = None,
    ) -> None:
        holder: list[Any] = []

        def check(request: Request) -> None:
            if not holder:
                # Behind Sentinels, the client asks them for the current master on each connection.
                holder.append(redis_connection.make_client(redis_target, redis_timeout))
            holder[0].ping()

        self.add_check(name, check, level, timeout, uses_request=False)

    def add_version_check(self, name: str = "version", level: int = 2, timeout: float | None = None) -> None:
        """Check that every process the broadcast reaches runs this one's version (a later upstream name).

        Each process answers the git hash of its versions file (``C2C_VERSIONS_PATH``, read now);
        the check fails when one differs, naming the versions and how many processes run each.
        The processes are the workers of this gunicorn and, with ``C2C_REDIS_URL`` (or the
        Sentinels), those of every container sharing that Redis and ``C2C_BROADCAST_PREFIX``: a
        rolling deployment fails it until it is over. Processes without a versions file are left
        out, as upstream's; one that does not answer in time too (with a warning in the log).
        """
        from c2cwsgiutils import broadcast, versions  # noqa: PLC0415 (the health check alone needs neither)

        self._config.include("c2cwsgiutils.broadcast")
        path = versions.VersionsSettings.of(self._config).path
        content = versions.read(path) if os.path.exists(path) else None
        own = versions.main_version(content)[0] if content is not None else None
        broadcast.subscribe(VERSION_CHANNEL, lambda: own)
        check_timeout = self.default_timeout if timeout is None else timeout

        def check(request: Request) -> None:
            # Answers in time for the check to report them, rather than time out.
            answers = broadcast.broadcast(VERSION_CHANNEL, expect_answers=True, timeout=check_timeout * 0.8)
            found = collections.Counter(str(answer) for answer in answers or [] if answer)
            if own is None or set(found) <= {own}:
                return
            counts = [f"{own} ({found[own]} processes, this one among them)"] + [
                f"{version} ({count} processes)" for version, count in found.most_common() if version != own
            ]
            raise RuntimeError(f"the processes run different versions: {', '.join(counts)}")

        self.add_check(name, check, level, check_timeout, uses_request=False)

    def _engines_of(self, router: "Router") -> "list[tuple[str, Engine]]":
        from c2cwsgiutils.db import ENGINES_KEY  # noqa: PLC0415

        engines = [router.primary] if router.single else [router.primary, router.replica]
        by_engine = {id(engine): prefix for prefix, engine in self._registry.get(ENGINES_KEY, {}).items()}
        names = ["primary", "replica"]
        return [(by_engine.get(id(engine), names[index]), engine) for index, engine in enumerate(engines)]

    # Running them.

    @property
    def names(self) -> list[str]:
        """Return the names of the checks, in the order they were added."""
        return list(self._checks)

    def _start(self, check: _Check, request: Request) -> tuple[concurrent.futures.Future[Any], float]:
        # One daemon thread per run, shared by the requests that come while it runs: a hanging
        # dependency holds one thread per check (a few for a check that reads the request: one
        # per distinct input, at most MAX_RUNS_IN_FLIGHT), and never delays the worker's exit.
        # A run started from one request's input is never handed to a request with another one.
        key: Any = check.name
        if check.uses_request:
            key = (check.name, request.environ.get("HTTP_HOST", ""), request.environ.get("QUERY_STRING", ""))
        with self._lock:
            running = self._running.get(key)
            if running is not None and not running[0].done():
                return running
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            started = time.monotonic()
            if check.uses_request:
                self._forget_done_runs()
                in_flight = sum(
                    1 for other in self._running if isinstance(other, tuple) and other[0] == check.name
                )
                if in_flight >= MAX_RUNS_IN_FLIGHT:
                    future.set_exception(CheckBusyError(f"{in_flight} runs of it are still in flight"))
                    return future, started
            self._running[key] = (future, started)
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_run_into, future, check.run, request),
            name=f"c2cwsgiutils-health-check-{check.name}"[:60],
            daemon=True,
        ).start()
        return future, started

    def _forget_done_runs(self) -> None:
        for key in [key for key, (future, _) in self._running.items() if future.done()]:
            del self._running[key]

    def run(self, request: Request, names: list[str]) -> list[_Outcome]:
        """Run the named checks concurrently; return their outcomes in the same order."""
        started = {name: self._start(self._checks[name], request) for name in names}
        outcomes = []
        for name in names:
            future, start = started[name]
            timeout = self._checks[name].timeout
            remaining = start + timeout - time.monotonic()
            try:
                future.result(timeout=max(remaining, 0))
                outcomes.append(_Outcome(name, time.monotonic() - start))
            except concurrent.futures.TimeoutError:
                running_for = time.monotonic() - start
                error = CheckTimeoutError(
                    f"timed out after {timeout:g} s (still running after {running_for:.1f} s)"
                )
                outcomes.append(_Outcome(name, running_for, error))
            except Exception as error:  # a check fails by raising anything
                outcomes.append(_Outcome(name, time.monotonic() - start, error))
        return outcomes

    def _select(self, request: Request) -> list[str] | Response:
        request_id = request_tracking.request_id(request)
        selected = request.params.get("checks")
        try:
            # Only a non-negative whole number is a level (nan, 1e9999 or ² are not).
            max_level: float = int_param(request, "max_level", -1, 0, MAX_LEVEL)
        except ParamError as error:
            return json_error(400, str(error), request_id)
        if max_level < 0:
            max_level = math.inf if selected else 1
        names = [name for name, check in self._checks.items() if check.level <= max_level]
        if selected:
            wanted = [name.strip() for name in selected.split(",") if name.strip()]
            unknown = [name for name in wanted if name not in self._checks]
            if unknown:
                return json_error(
                    400, f"unknown checks {unknown}: the checks are {list(self._checks)}", request_id
                )
            names = [name for name in names if name in wanted]
        return names

    def view(self, request: Request) -> Response:
        """Answer ``{"status", "successes", "failures"}`` (and ``timings`` with ``timings=1``)."""
        names = self._select(request)
        if isinstance(names, Response):
            return names
        outcomes = self.run(request, names)
        failures: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        for outcome in outcomes:
            if outcome.error is None:
                continue
            error = outcome.error
            if isinstance(error, CheckSkippedError):
                skipped[outcome.name] = str(error)
                continue
            message = scrub_message(str(error) or type(error).__name__)
            LOG.warning("health check %s failed: %s", outcome.name, message)
            failure: dict[str, Any] = {"message": message if self._development else public_message(error)}
            if isinstance(error, JsonCheckException):
                failure.update(failure_result(error, self._development))
            if self._development and not isinstance(error, CheckTimeoutError):
                failure["stacktrace"] = [
                    scrub_message(line)
                    for line in "".join(traceback.format_exception(error)).rstrip().splitlines()
                ]
            failures[outcome.name] = failure
        status = 500 if failures else 200
        body: dict[str, Any] = {
            "status": status,
            "successes": [outcome.name for outcome in outcomes if outcome.error is None],
            "failures": failures,
        }
        if skipped:
            body["skipped"] = skipped
        if MAINTENANCE.readonly:
            # Reported, not failed: reads still work, and a load balancer that took every
            # instance out at once would turn a read-only service into no service.
            body["maintenance"] = MAINTENANCE.state()
        if request.params.get("timings") in ("1", "true", "yes", "on"):
            body["timings"] = {outcome.name: round(outcome.duration * 1000, 1) for outcome in outcomes}
        headers = [("Cache-Control", "no-store")]
        if outcomes:
            headers.append(("Server-Timing", server_timing(outcomes)))
        return json_response(body, status=status, headers=headers)


def _run_into(
    future: "concurrent.futures.Future[Any]", run: Callable[[Request], Any], request: Request
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(run(request))
    except BaseException as error:
        future.set_exception(error)


def server_timing(outcomes: list[_Outcome]) -> str:
    """Return a ``Server-Timing`` value with each check's duration (names made into tokens)."""
    parts = []
    for index, outcome in enumerate(outcomes):
        token = _TOKEN_UNSAFE.sub("_", outcome.name) or f"check{index}"
        description = outcome.name.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'{token};dur={outcome.duration * 1000:.1f};desc="{description}"')
    return ", ".join(parts)


def _router_of(session: "scoped_session[Session] | sessionmaker[Session]") -> "Router":
    """Return the router of ``setup_session``'s scoped session or ``setup_request_session``'s sessionmaker."""
    from sqlalchemy.orm import scoped_session, sessionmaker  # noqa: PLC0415

    factory = session.session_factory if isinstance(session, scoped_session) else session
    if not isinstance(factory, sessionmaker) or "router" not in factory.kw:
        raise TypeError("the database health checks need a session made by c2cwsgiutils.db")
    router: Router = factory.kw["router"]
    return router


def _check_session(router: "Router") -> "scoped_session[Session]":
    """Return a thread-local session on ``router`` for the checks.

    A session of its own, not joined to any transaction manager: the checks run in threads of
    their own, where no request's ``request.tm`` is, and must not leave a transaction open there.
    """
    from sqlalchemy.orm import scoped_session, sessionmaker  # noqa: PLC0415

    from c2cwsgiutils.database.routing import RoutingSession  # noqa: PLC0415

    return scoped_session(sessionmaker(class_=RoutingSession, router=router))


class _DbCheck:
    """One engine of a session: the query, or a row of the model, and not on a fallback connection."""

    def __init__(
        self,
        session: "scoped_session[Session]",
        engine: "Engine",
        query_cb: Any,
        model: Any,
        skip_in_maintenance: bool = False,
    ) -> None:
        self.session = session
        self.engine = engine
        self.query_cb = query_cb
        self.model = model
        self.skip_in_maintenance = skip_in_maintenance

    def __call__(self, request: Request) -> None:
        from sqlalchemy import select, text  # noqa: PLC0415

        from c2cwsgiutils.database.routing import FALLBACK  # noqa: PLC0415
        from c2cwsgiutils.db import use_engine  # noqa: PLC0415

        if self.skip_in_maintenance and MAINTENANCE.readonly:
            raise CheckSkippedError(MAINTENANCE_SKIP)
        # The scoped session of this pool thread, on this engine, removed afterwards.
        try:
            use_engine(self.session, self.engine)
            session = self.session()
            if self.query_cb is not None:
                self.query_cb(session)
            else:
                session.execute(text("SELECT 1"))
            if self.model is not None and session.execute(select(self.model).limit(1)).first() is None:
                table = getattr(self.model, "__tablename__", self.model)
                raise RuntimeError(f"the table {table} has no row")
            if session.connection().info.get(FALLBACK):
                raise RuntimeError("the replica does not answer (its reads go to the primary)")
        finally:
            self.session.remove()


class _AlembicCheck:
    """Every engine's ``alembic_version`` holds the head revision of the migration scripts."""

    def __init__(
        self,
        ini_path: str,
        section: str,
        engines: "list[tuple[str, Engine]]",
        version_schema: str | None,
        version_table: str | None,
    ) -> None:
        self.ini_path = ini_path
        self.section = section
        self.engines = engines
        self.version_schema = version_schema
        self.version_table = version_table

    def __call__(self, request: Request) -> None:
        from alembic.config import Config  # noqa: PLC0415
        from alembic.runtime.migration import MigrationContext  # noqa: PLC0415
        from alembic.script import ScriptDirectory  # noqa: PLC0415

        config = Config(self.ini_path, ini_section=self.section)
        heads = set(ScriptDirectory.from_config(config).get_heads())
        options: dict[str, Any] = {
            "version_table": self.version_table
            or config.get_main_option("version_table")
            or "alembic_version",
        }
        schema = self.version_schema or config.get_main_option("version_table_schema")
        if schema:
            options["version_table_schema"] = schema
        engines = self.engines
        if MAINTENANCE.readonly and len(engines) > 1:
            engines = engines[1:]  # not the primary: maintenance may have stopped it
        for prefix, engine in engines:
            with engine.connect() as connection:
                current = set(MigrationContext.configure(connection, opts=options).get_current_heads())
            if current != heads:
                # Named by its settings prefix: the URL would tell a client the user, host and database.
                raise RuntimeError(
                    f"{prefix} is at revision {', '.join(sorted(current)) or 'none'}, "
                    f"the scripts' head is {', '.join(sorted(heads)) or 'none'}"
                )


def _alive(request: Request) -> Response:
    return json_response({"status": 200}, headers=[("Cache-Control", "no-store")])


def includeme(config: Configurator) -> None:
    """Add ``{C2C_BASE_PATH}/health``: answers 200 without touching any dependency (liveness)."""
    if not first_time(config, "health_check"):
        return
    add_ops_view(config, "health", "/health", _alive, request_method=("GET", "HEAD"))
