"""Error reports to Sentry, with ``sentry-sdk`` (the ``sentry`` extra), on when ``SENTRY_URL`` is set.

- ``SENTRY_URL`` is the project's DSN. The release is ``SENTRY_CLIENT_RELEASE`` unless it is unset
  or ``latest``, then ``GIT_HASH``; ``SENTRY_CLIENT_ENVIRONMENT`` is the environment.
- Every other ``SENTRY_CLIENT_<OPTION>`` environment variable is passed to ``sentry_sdk.init`` as
  ``<option>`` (lower case), converted to the option's type; one that is not an option of the
  installed sentry-sdk, or that cannot be given as text (a callable...), stops the start-up with
  a one-line error naming it. ``SENTRY_TAG_<NAME>`` adds the tag ``<name>`` to every event.
- Events are log records at ERROR and above (so an unexpected error, which the JSON error views log
  once, is one event, with its route and request ID as tags), and what escapes
  :func:`capture_exceptions`. Errors the app answers with a 4xx are not logged at ERROR: no event.
- Nothing secret leaves: before an event is sent, every text in it is scrubbed of secret-looking
  query parameters (:mod:`c2cwsgiutils.scrub`) and of the values of the toolkit's secret settings
  in every form (raw, repr, JSON-escaped, percent-encoded...), credential headers are masked
  (:func:`c2cwsgiutils.scrub.is_secret_header`, the debug view's rule) and cookies dropped. A
  secret setting too short to be masked (:data:`MIN_SECRET_LENGTH`) stops the start-up.
- sentry-sdk sends from a background thread through a bounded queue, so a Sentry that hangs or is
  down never delays a request; at exit a worker waits at most ``shutdown_timeout`` (2 s, or
  ``SENTRY_CLIENT_SHUTDOWN_TIMEOUT``) for the events still queued.

Nothing is added to the request path: the request's route, method and URL are read only when an
event is made. sentry-sdk's auto-enabling integrations (which wrap every request) stay off unless
``SENTRY_CLIENT_AUTO_ENABLING_INTEGRATIONS=true``.

Initialised by the include, in each gunicorn worker (the app is loaded after the fork), and by
``c2cwsgiutils.gunicorn_config`` in the gunicorn master, whose errors (a worker killed, a worker
timeout) are events too. A forked child gets a client of its own (``os.register_at_fork``): the
parent's sending thread does not survive a fork. A second initialisation with the same options
changes nothing.
"""

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.threadlocal import get_current_request

from c2cwsgiutils import extras, scrub
from c2cwsgiutils.config_utils import SettingError, SettingsGroup, parse_bool, parse_float, parse_int, setting
from c2cwsgiutils.include import first_time
from c2cwsgiutils.request_tracking import current_request_id

LOG = logging.getLogger(__name__)

CLIENT_PREFIX = "SENTRY_CLIENT_"
TAG_PREFIX = "SENTRY_TAG_"
# Options whose default is None in sentry-sdk, by the type an environment value is converted to.
_FLOAT_OPTIONS = frozenset(("traces_sample_rate", "profiles_sample_rate", "profile_session_sample_rate"))
_INT_OPTIONS = frozenset(("max_value_length",))
_BOOL_OPTIONS = frozenset(("send_default_pii", "keep_alive", "debug", "enable_tracing"))
_LIST_OPTIONS = frozenset(
    ("in_app_include", "in_app_exclude", "trace_propagation_targets", "functions_to_trace", "ignore_errors")
)
# Options that are code or structures, or that the toolkit sets itself.
_NOT_FROM_TEXT = frozenset(
    (
        "dsn",  # SENTRY_URL
        "integrations",
        "disabled_integrations",
        "transport",
        "before_send",
        "before_breadcrumb",
        "before_send_transaction",
        "before_send_log",
        "before_send_metric",
        "before_send_span",
        "traces_sampler",
        "profiles_sampler",
        "error_sampler",
        "event_scrubber",
        "custom_repr",
        "socket_options",
        "proxy_headers",
        "data_collection",
        "trace_ignore_status_codes",
        "ignore_spans",
        "_experiments",
    )
)
_REQUEST_ID_TAG = "request_id"
_BREADCRUMB_REQUEST_ID = "c2c_request_id"


@dataclasses.dataclass(frozen=True)
class SentrySettings(SettingsGroup):
    """Where errors are reported, and as which release and environment.

    ``SENTRY_CLIENT_<OPTION>`` (any option of ``sentry_sdk.init``) and ``SENTRY_TAG_<NAME>`` are
    read from the environment too; see docs/sentry.md.
    """

    TITLE = "Sentry"

    url: str | None = setting(
        "SENTRY_URL",
        "c2c.sentry.url",
        None,
        "The Sentry project's DSN: errors are reported there. Off when unset.",
        secret=True,
    )
    release: str | None = setting(
        "SENTRY_CLIENT_RELEASE",
        "c2c.sentry.client_release",
        None,
        "The release events are reported for; unset or `latest` means `GIT_HASH`.",
    )
    environment: str | None = setting(
        "SENTRY_CLIENT_ENVIRONMENT",
        "c2c.sentry.client_environment",
        None,
        "The environment events are reported for (dev, int, prod...).",
    )
    git_hash: str | None = setting(
        "GIT_HASH", None, None, "The commit the app is built from: the release unless one is given."
    )


# The one process-wide state: sentry-sdk's client is global to the process.
_state: dict[str, Any] = {}
_fork_hook: list[bool] = []  # os.register_at_fork cannot be undone: once per process


def _split_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _option_parser(name: str, default: Any) -> Callable[[str], Any] | None:
    """Return how an environment value becomes the option ``name``, or None if it cannot."""
    if name in _NOT_FROM_TEXT or callable(default):
        return None
    by_type: tuple[tuple[type, frozenset[str], Callable[[str], Any]], ...] = (
        (bool, _BOOL_OPTIONS, parse_bool),  # before int: a bool is an int
        (int, _INT_OPTIONS, parse_int),
        (float, _FLOAT_OPTIONS, parse_float),
        (list, _LIST_OPTIONS, _split_list),
    )
    for kind, names, parse in by_type:
        if isinstance(default, kind) or name in names:
            return parse
    return str if default is None or isinstance(default, str) else None


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the ``SENTRY_CLIENT_*`` options of the environment, checked against sentry-sdk's.

    Raises :class:`SettingError`, naming the variable, for an unknown option or a bad value.
    """
    environ = os.environ if environ is None else environ
    consts = extras.require("sentry_sdk.consts", "sentry", "Sentry (SENTRY_URL)")
    known: dict[str, Any] = consts.DEFAULT_OPTIONS
    options: dict[str, Any] = {}
    for variable, raw in sorted(environ.items()):
        if not variable.startswith(CLIENT_PREFIX) or raw == "":
            continue
        name = variable.removeprefix(CLIENT_PREFIX).lower()
        if name in ("release", "environment"):
            continue  # declared settings, resolved with the ini
        if name not in known:
            raise SettingError(f"environment variable {variable}: {name!r} is not a sentry_sdk.init option")
        parse = _option_parser(name, known[name])
        if parse is None:
            raise SettingError(f"environment variable {variable}: {name!r} cannot be given as text")
        try:
            options[name] = parse(raw)
        except ValueError as error:
            raise SettingError(f"environment variable {variable}={raw!r}: {error}") from None
    return options


def tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the ``SENTRY_TAG_<NAME>`` tags of the environment, named in lower case."""
    environ = os.environ if environ is None else environ
    return {
        variable.removeprefix(TAG_PREFIX).lower(): value
        for variable, value in environ.items()
        if variable.startswith(TAG_PREFIX) and len(variable) > len(TAG_PREFIX) and value
    }


MIN_SECRET_LENGTH = 8
"""With Sentry on, a secret setting shorter than this stops the start-up: masking it in events
would mask ordinary text too (and show where the secret's letters stand), not masking it would
send it."""


def secret_values(settings: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the values of the toolkit's secret settings, longest first, to be masked in events.

    Raises :class:`SettingError`, naming the setting, for one shorter than :data:`MIN_SECRET_LENGTH`.
    """
    # Imported here: the catalogue imports every feature module.
    from c2cwsgiutils import settings_catalogue  # noqa: PLC0415

    found: set[str] = set()
    for group in settings_catalogue.groups():
        for _, declaration in group.declarations():
            if not declaration.secret:
                continue
            try:
                value = declaration.resolve(settings, environ)
            except SettingError:
                continue
            if not isinstance(value, str) or not value:
                continue
            if len(value) < MIN_SECRET_LENGTH:
                raise SettingError(
                    f"{declaration.source(settings, environ)} is too short to be masked in Sentry events "
                    f"({len(value)} characters; at least {MIN_SECRET_LENGTH} with SENTRY_URL set)"
                )
            found.add(value)
    return sorted(found, key=len, reverse=True)


class Scrubber:
    """Remove secrets from the texts of an event: secret query parameters and secret values.

    Secret values are masked in every form (:class:`scrub.SecretValues`): sentry-sdk shows local
    variables by their ``repr()``, which doubles a backslash, and a value may be percent-encoded
    or JSON-escaped in a URL, a body or a message. The values of credential headers are masked
    wherever a WSGI environ shows them (``HTTP_AUTHORIZATION``...), dictionary keys are scrubbed
    too, and with ``max_value_length`` a text cut short does not keep a secret's start.
    """

    def __init__(self, secrets: list[str], max_value_length: int | None = None) -> None:
        self.secrets = secrets
        self._values = scrub.SecretValues(secrets)
        self._cut = max_value_length is not None

    def text(self, value: str) -> str:
        """Scrub one text."""
        value = self._values.mask_cut(value) if self._cut else self._values.mask(value)
        return scrub.scrub_text(value)

    def value(self, value: Any) -> Any:
        """Scrub every text in a structure of dicts and lists (an event, a breadcrumb)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._key(key): self._item(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def _key(self, key: Any) -> Any:
        return self.text(key) if isinstance(key, str) else key  # a dict keyed by a secret

    def _item(self, key: Any, item: Any) -> Any:
        # A WSGI environ in a frame's variables shows the credential headers by their keys.
        if isinstance(key, str) and scrub.is_secret_environ_key(key):
            return scrub.REDACTED
        return self.value(item)


def _request_data(request: Any) -> dict[str, Any]:
    """Return what an event says of the request being served (its body never)."""
    return {
        "method": request.method,
        "url": request.path_url,
        "query_string": request.query_string,
        "headers": dict(request.headers),
    }


def _add_request(event: dict[str, Any]) -> None:
    """Add the request being served, its route and its ID to an event."""
    event_tags = event.setdefault("tags", {})
    request_id = current_request_id.get()
    if request_id is not None:
        event_tags[_REQUEST_ID_TAG] = request_id
    request = get_current_request()
    if request is None:
        return
    route = getattr(request, "matched_route", None)
    if route is not None:
        event_tags["route"] = route.name
        event.setdefault("transaction", route.name)
    event["request"] = _request_data(request)


def _keep_own_breadcrumbs(event: dict[str, Any]) -> None:
    """Keep the breadcrumbs made while serving this event's request (a worker thread serves many)."""
    request_id = current_request_id.get()
    breadcrumbs = event.get("breadcrumbs")
    if not isinstance(breadcrumbs, dict) or not isinstance(breadcrumbs.get("values"), list):
        return
    kept = []
    for breadcrumb in breadcrumbs["values"]:
        # Copies: the scope keeps the same breadcrumbs for the events to come.
        data = dict(breadcrumb.get("data") or {})
        if data.pop(_BREADCRUMB_REQUEST_ID, None) == request_id:
            kept.append({**breadcrumb, "data": data})
    breadcrumbs["values"] = kept


def make_before_send(scrubber: Scrubber) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
    """Return the ``before_send`` hook: the request's details, then scrubbing."""

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        try:
            _add_request(event)
            _keep_own_breadcrumbs(event)
            request = event.get("request")
            if isinstance(request, dict):
                request.pop("cookies", None)
                request.pop("data", None)
                if isinstance(request.get("headers"), dict):
                    request["headers"] = scrub.mask_headers(request["headers"])
            scrubbed: dict[str, Any] = scrubber.value(event)
        except Exception:  # an event that cannot be made safe is not sent
            LOG.warning("cannot scrub a Sentry event; it is dropped", exc_info=True)
            return None
        return scrubbed

    return before_send


def make_scrub_only(scrubber: Scrubber) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
    """Return a hook that scrubs what else sentry-sdk may send when asked: transactions, logs."""

    def scrub_only(item: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        try:
            scrubbed: dict[str, Any] = scrubber.value(item)
        except Exception:
            return None
        return scrubbed

    return scrub_only


def before_breadcrumb(breadcrumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Mark a breadcrumb with the request it was made for, to keep only those of an event's request."""
    breadcrumb.setdefault("data", {})[_BREADCRUMB_REQUEST_ID] = current_request_id.get()
    return breadcrumb


def init(settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Initialise sentry-sdk if ``SENTRY_URL`` is set; return whether it is on.

    Raises :class:`SettingError` for a bad setting, ``MissingExtraError`` without sentry-sdk.
    """
    environ = os.environ if environ is None else environ
    resolved = SentrySettings.resolve(settings, environ)
    if resolved.url is None:
        return False
    options = client_options(environ)
    release = resolved.release if resolved.release not in (None, "latest") else resolved.git_hash
    event_tags = tags(environ)
    secrets = secret_values(settings, environ)
    key = repr((resolved, sorted(options.items()), sorted(event_tags.items()), secrets))
    if _state.get("key") == key and _state.get("pid") == os.getpid():
        return True  # the same client is already there: a second one would change nothing
    scrubber = Scrubber(secrets, options.get("max_value_length"))
    options = {
        "release": release,
        "environment": resolved.environment,
        "auto_enabling_integrations": False,
        **options,
        "dsn": resolved.url,
        "before_send": make_before_send(scrubber),
        # Transactions (SENTRY_CLIENT_TRACES_SAMPLE_RATE) and logs (SENTRY_CLIENT_ENABLE_LOGS)
        # carry URLs and messages too.
        "before_send_transaction": make_scrub_only(scrubber),
        "before_send_log": make_scrub_only(scrubber),
        "before_breadcrumb": before_breadcrumb,
    }
    _start(options, event_tags)
    _state.update(key=key, options=options, tags=event_tags)
    if not _fork_hook:
        # A forked child (a gunicorn worker of a master that reports, or of --preload) gets a client
        # of its own: the parent's sending thread and its locks do not survive the fork.
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook.append(True)
    LOG.info("Sentry is on (release %s, environment %s)", release, resolved.environment)
    return True


def _start(options: dict[str, Any], event_tags: dict[str, str]) -> None:
    sentry_sdk = extras.require("sentry_sdk", "sentry", "Sentry (SENTRY_URL)")
    try:
        sentry_sdk.init(**options)
    except Exception as error:  # such as a malformed DSN
        raise SettingError(f"Sentry: {type(error).__name__}: {scrub.scrub_text(str(error))}") from None
    scope = sentry_sdk.get_global_scope()
    for name, value in event_tags.items():
        scope.set_tag(name, value)
    _state["pid"] = os.getpid()


def _after_fork_in_child() -> None:
    """Start a fresh client in a forked child, with the parent's options."""
    if "options" in _state:
        try:
            _start(_state["options"], _state["tags"])
        except Exception:  # the child must run, reported or not
            LOG.warning("cannot start Sentry in process %d", os.getpid(), exc_info=True)


def check(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SettingError` (or ``MissingExtraError``) now if the workers' Sentry would not start.

    For ``c2cwsgiutils_run``, before gunicorn starts: a bad ``SENTRY_CLIENT_*``, or a secret too
    short to be masked, is one line there.
    """
    environ = os.environ if environ is None else environ
    if SentrySettings.resolve(None, environ).url is not None:
        client_options(environ)
        secret_values(None, environ)


def is_on() -> bool:
    """Tell whether this process reports to Sentry."""
    return "key" in _state


@contextlib.contextmanager
def capture_exceptions() -> Iterator[None]:
    """Report an exception that escapes the block to Sentry, then let it go on; no-op without Sentry."""
    try:
        yield
    except Exception as exc:
        if is_on():
            sys.modules["sentry_sdk"].capture_exception(exc)
        raise


def filter_wsgi_app(application: Callable[..., Any]) -> Callable[..., Any]:
    """Report to Sentry what escapes ``application`` (upstream 6.1's name).

    Sentry is set up from the environment first, as :func:`includeme` without a configurator;
    without ``SENTRY_URL``, ``application`` itself is returned. The toolkit's error views already
    report what a Pyramid app raises: this catches what other WSGI layers raise.
    """
    if not is_on():  # set up by the app's own include (which knows its ini's secrets), else here
        init()
    if not is_on():
        return application

    def reporting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with capture_exceptions():
            return application(environ, start_response)

    return reporting


def filter_factory(global_conf: Mapping[str, Any] | None = None, **local_conf: Any) -> Callable[..., Any]:
    """PasteDeploy's filter: ``egg:c2cwsgiutils#sentry`` in a ``[pipeline:main]``, as c2cgeoportal's ini."""
    del global_conf, local_conf  # everything comes from the environment, as upstream
    return filter_wsgi_app


def reset() -> None:
    """Forget the client (for tests): the next :func:`init` makes a new one."""
    if is_on():
        sys.modules["sentry_sdk"].init(dsn=None)
    _state.clear()


def includeme(config: Configurator | None = None) -> None:
    """Report errors to Sentry when ``SENTRY_URL`` is set.

    Without a configurator (upstream 6's form, which tilecloud-chain's generation scripts call),
    from the environment alone, unless a client is there already.
    """
    if config is None:
        if not is_on():  # a client made from an ini knows more secrets to mask: keep it
            init()
        return
    if not first_time(config, "sentry"):
        return
    init(config.get_settings())
