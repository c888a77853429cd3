"""The client's address, scheme, host and port, as told by the trusted proxies in front of the app.

Behind a reverse proxy the TCP peer is the proxy, not the client. The proxy says who the client
is in headers: ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` (what nginx, Traefik, HAProxy,
ingress-nginx and the cloud load balancers send) or ``Forwarded`` (RFC 7239). Anybody can send
those headers, so they are believed only as far as they were written by a trusted proxy: the
chain of addresses is walked from the right (the hop nearest to the app), starting from the TCP
peer, and the walk stops at the first address that is not in ``C2C_TRUSTED_PROXIES``. That
address is the client. What a client writes itself is on the left of what its first proxy
appends, so it is never reached.

The WSGI environ is then rewritten in place (``REMOTE_ADDR``, ``REMOTE_PORT`` when known,
``wsgi.url_scheme``, ``HTTP_HOST``, ``SERVER_NAME``, ``SERVER_PORT``), so
``request.client_addr``, ``request.scheme``, ``request.host``, ``request.route_url()``, the JSON
log records and gunicorn's access log (which reads the same environ dict when the response is
sent) all see the client. The values the server saw are kept in
``environ["c2cwsgiutils.client_info.original"]``.

Only one family of headers is read (``C2C_FORWARDED_HEADERS``): a proxy that writes one family
passes the other through untouched, and a client could forge it. A header that does not parse, or
a hop that is not an IP address (an obfuscated ``_hidden`` or ``unknown`` node), ends the walk:
never an error.

The include adds a tween at the top (over the request-tracking tween); :class:`ClientInfoFilter`
is the same as a WSGI middleware, for a pipeline of filters or a non-Pyramid app.
"""

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS, MAIN

from c2cwsgiutils import request_tracking
from c2cwsgiutils.config_utils import SettingsGroup, is_ascii_int, parse_bool, setting
from c2cwsgiutils.include import first_time

TWEEN = "c2cwsgiutils.client_info.tween_factory"
"""The tween's name: it is placed over every other tween of the toolkit."""
ORIGINAL = "c2cwsgiutils.client_info.original"
"""Environ key of what the server saw, when the filter changed it (``REMOTE_ADDR``...)."""
DEFAULT_TRUSTED = "127.0.0.1/32,::1/128"
_SETTINGS_KEY = "c2cwsgiutils.client_info"
_MAX_CACHE = 1024
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 (RFC 7230's token, no password)
# Values are tokens or quoted strings in RFC 7239; ``:`` and brackets are accepted unquoted too, as
# some proxies send ``for=192.0.2.1:4711`` that way. Being lenient here trusts nothing more: what
# is believed depends only on the position of a hop in the chain.
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=(?:([!#$%&\'*+\-.^_`|~0-9A-Za-z:\[\]]+)|"((?:[^"\\]|\\.)*)")[ \t]*')
_OWS = re.compile(r"[ \t]*")
_UNESCAPE = re.compile(r"\\(.)")
_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_SCHEMES = {"http": "80", "https": "443"}
_X_FORWARDED_KEYS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
)
_FORWARDED_KEYS = ("HTTP_FORWARDED",)


class Networks(tuple):  # type: ignore[type-arg]
    """Networks, shown as the setting is written (``10.0.0.0/8,::1/128``)."""

    __slots__ = ()

    def __str__(self) -> str:
        return ",".join(str(network) for network in self)


def parse_networks(raw: str | Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse a comma-separated list of networks (``10.0.0.0/8``, ``::1``: a bare address is a /32 or /128)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    networks = []
    for item in items:
        text = item.strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not a network (CIDR) or an IP address") from None
    return Networks(networks)


def _parse_headers_family(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("x-forwarded", "forwarded"):
        raise ValueError("expected x-forwarded or forwarded")
    return value


def _parse_scheme(raw: str) -> str:
    if raw.lower() not in _SCHEMES:
        raise ValueError("http or https")
    return raw.lower()


def _parse_host(raw: str) -> str:
    if not _HOST.fullmatch(raw):
        raise ValueError("a host name or address, with a port or not")
    return raw


def _parse_address(raw: str) -> str:
    if _ip(raw) is None:
        raise ValueError("an IP address")
    return raw


@dataclasses.dataclass(frozen=True)
class ClientInfoSettings(SettingsGroup):
    """Which proxies are believed about the client."""

    TITLE = "Client info behind proxies"

    enabled: bool = setting(
        "C2C_CLIENT_INFO",
        "c2c.client_info",
        True,
        "Take the client's address, scheme and host from the headers of the trusted proxies "
        "(see [Behind a proxy](#behind-a-proxy--on-kubernetes)).",
        parse=parse_bool,
    )
    trusted_proxies: tuple[Any, ...] = setting(
        "C2C_TRUSTED_PROXIES",
        "c2c.trusted_proxies",
        parse_networks(DEFAULT_TRUSTED),
        "Networks (CIDR, comma-separated) of the proxies whose forwarding headers are believed. "
        "Set it to your ingress or load balancer's addresses; `0.0.0.0/0,::/0` only if nothing "
        "else can reach the app.",
        parse=parse_networks,
        default_doc=f"`{DEFAULT_TRUSTED}` (loopback, as gunicorn's `forwarded_allow_ips`)",
    )
    headers: str = setting(
        "C2C_FORWARDED_HEADERS",
        "c2c.forwarded_headers",
        "x-forwarded",
        "Which headers the trusted proxies write: `x-forwarded` (`X-Forwarded-For/-Proto/-Host/-Port`) "
        "or `forwarded` (RFC 7239). The other family is ignored: a client could forge it.",
        parse=_parse_headers_family,
    )
    force_proto: str | None = setting(
        "C2CWSGIUTILS_FORCE_PROTO",
        "c2c.force_proto",
        None,
        "Upstream 6.1's: the scheme of every request (`http` or `https`), whatever the headers say; "
        "for a proxy that does not tell it.",
        parse=_parse_scheme,
    )
    force_host: str | None = setting(
        "C2CWSGIUTILS_FORCE_HOST",
        "c2c.force_host",
        None,
        "Upstream 6.1's: the `Host` of every request (`name` or `name:port`), whatever the headers say.",
        parse=_parse_host,
    )
    force_server_name: str | None = setting(
        "C2CWSGIUTILS_FORCE_SERVER_NAME",
        "c2c.force_server_name",
        None,
        "Upstream 6.1's: the WSGI `SERVER_NAME` of every request.",
        parse=_parse_host,
    )
    force_remote_addr: str | None = setting(
        "C2CWSGIUTILS_FORCE_REMOTE_ADDR",
        "c2c.force_remote_addr",
        None,
        "Upstream 6.1's: the client address of every request (an IP address).",
        parse=_parse_address,
    )

    def forced(self) -> dict[str, str]:
        """Return the environ keys that the ``C2CWSGIUTILS_FORCE_*`` settings set on every request."""
        values = {
            "wsgi.url_scheme": self.force_proto,
            "HTTP_HOST": self.force_host,
            "SERVER_NAME": self.force_server_name,
            "REMOTE_ADDR": self.force_remote_addr,
        }
        return {key: value for key, value in values.items() if value is not None}


class TrustedNetworks:
    """Tell whether an address is in the trusted networks (with a small cache of the answers)."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def __contains__(self, address: str) -> bool:
        return self.trusts(address)

    def trusts(self, address: str) -> bool:
        """Tell whether ``address`` (an IP address as text) is in a trusted network."""
        found = self._cache.get(address)
        if found is None:
            ip = _ip(address)
            found = ip is not None and any(ip in network for network in self.networks)
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()  # bounded; the addresses seen lately come back at once
            self._cache[address] = found
        return found


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return ip


def _is_port(text: str) -> bool:
    return is_ascii_int(text) and 0 < int(text) < 65536


def parse_node(text: str) -> tuple[str, str | None] | None:
    """Parse a hop (``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80``, ``2001:db8::1``).

    Return the normalised address and the port (None if absent or obfuscated), or None when it is
    not an IP address (``unknown``, ``_hidden``, garbage).
    """
    text = text.strip()
    port: str | None = None
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or None
    elif text.count(":") == 1:
        address, _, port = text.partition(":")
    else:
        address = text
    ip = _ip(address)
    if ip is None or (isinstance(ip, ipaddress.IPv6Address) and ip.scope_id):
        return None
    if port is not None and not _is_port(port):
        port = None  # an obfuscated port ("_abc") or nonsense: the address still counts
    return str(ip), port


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """Parse an RFC 7239 ``Forwarded`` header into its elements (lower-case parameter names).

    Return None if it is malformed anywhere (a quoted string may hide a comma, so what follows a
    syntax error cannot be split reliably).
    """
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    position, end = 0, len(value)
    while True:
        match = _PAIR.match(value, position)
        if match is not None:
            name = match.group(1).lower()
            if name in current:
                return None  # a parameter twice in one element is invalid (RFC 7239 section 4)
            token, quoted = match.group(2), match.group(3)
            current[name] = token if token is not None else _UNESCAPE.sub(r"\1", quoted)
            position = match.end()
        else:
            spaces = _OWS.match(value, position)
            position = spaces.end() if spaces is not None else position
        if position >= end:
            elements.append(current)
            return elements
        separator = value[position]
        if separator == ",":
            elements.append(current)
            current = {}
        elif separator != ";":
            return None
        position += 1


@dataclasses.dataclass(frozen=True)
class Hop:
    """What one element of the chain says: the address of the client of the proxy that wrote it, and more."""

    node: str
    proto: str | None = None
    host: str | None = None
    port: str | None = None


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in value.split(",")] if value else []


def _x_forwarded_hops(environ: MutableMapping[str, Any]) -> list[Hop]:
    nodes = _split(environ.get("HTTP_X_FORWARDED_FOR"))
    protos = _split(environ.get("HTTP_X_FORWARDED_PROTO"))
    hosts = _split(environ.get("HTTP_X_FORWARDED_HOST"))
    ports = _split(environ.get("HTTP_X_FORWARDED_PORT"))
    if not nodes:
        # A TLS terminator may send only -Proto/-Host: they describe the peer's client.
        if not (protos or hosts or ports):
            return []
        nodes = [""]

    def aligned(values: list[str], index: int) -> str | None:
        # One value per hop: the one of that hop. Otherwise (one value, set by the last proxy),
        # the last one.
        if len(values) == len(nodes):
            return values[index] or None
        return values[-1] or None if values else None

    return [
        Hop(node, aligned(protos, index), aligned(hosts, index), aligned(ports, index))
        for index, node in enumerate(nodes)
    ]


def _forwarded_hops(environ: MutableMapping[str, Any]) -> list[Hop]:
    value = environ.get("HTTP_FORWARDED")
    if not value:
        return []
    elements = parse_forwarded(value)
    if elements is None:
        return []
    return [Hop(element.get("for", ""), element.get("proto"), element.get("host")) for element in elements]


def _host_and_port(host: str) -> tuple[str, str | None]:
    if host.endswith("]") or ":" not in host:
        return host, None
    name, _, port = host.rpartition(":")
    return name, port


def apply(environ: MutableMapping[str, Any], trusted: TrustedNetworks, use_forwarded: bool = False) -> None:
    """Rewrite ``environ`` with what the trusted proxies say about the client; see the module's docstring."""
    # On every request: a few dictionary lookups unless a forwarding header is there.
    peer = environ.get("REMOTE_ADDR")
    forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
    if peer and trusted.trusts(peer) and ORIGINAL not in environ:
        keys = _FORWARDED_KEYS if use_forwarded else _X_FORWARDED_KEYS
        for key in keys:
            if key in environ:
                _from_proxies(environ, trusted, use_forwarded, peer)
                forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
                break
    # WebOb's request.client_addr believes the first X-Forwarded-For hop of anybody: the header
    # is made to agree with REMOTE_ADDR (the original is kept). Without REMOTE_ADDR at all (a
    # test's fake environ) there is nothing to agree with; a Unix socket's empty one counts.
    if forwarded_for is not None and peer is not None:
        address = environ.get("REMOTE_ADDR") or ""
        if forwarded_for != address:
            environ.setdefault(ORIGINAL, {})["HTTP_X_FORWARDED_FOR"] = forwarded_for
            environ["HTTP_X_FORWARDED_FOR"] = address


def force(environ: MutableMapping[str, Any], forced: Mapping[str, str]) -> None:
    """Set what the ``C2CWSGIUTILS_FORCE_*`` settings say, keeping what it replaces in :data:`ORIGINAL`."""
    original = environ.setdefault(ORIGINAL, {})
    for key, value in forced.items():
        original.setdefault(key, environ.get(key))
        environ[key] = value
    if "REMOTE_ADDR" in forced and "HTTP_X_FORWARDED_FOR" in environ:
        # WebOb's client_addr reads X-Forwarded-For first: it must agree (see apply()).
        original.setdefault("HTTP_X_FORWARDED_FOR", environ["HTTP_X_FORWARDED_FOR"])
        environ["HTTP_X_FORWARDED_FOR"] = forced["REMOTE_ADDR"]


def _from_proxies(
    environ: MutableMapping[str, Any], trusted: TrustedNetworks, use_forwarded: bool, peer: str
) -> None:
    hops = _forwarded_hops(environ) if use_forwarded else _x_forwarded_hops(environ)
    address, port, used = peer, None, None
    for hop in reversed(hops):
        if address not in trusted:
            break
        if not hop.node:  # -Proto/-Host without -For: the hop of the peer's client, address unknown
            used = hop
            break
        parsed = parse_node(hop.node)
        if parsed is None:
            break  # unknown, obfuscated or malformed: the last trusted hop is what we know
        (address, port), used = parsed, hop
    if used is None:
        return
    environ[ORIGINAL] = {
        key: environ.get(key)
        for key in (
            "REMOTE_ADDR",
            "REMOTE_PORT",
            "wsgi.url_scheme",
            "HTTP_HOST",
            "SERVER_NAME",
            "SERVER_PORT",
        )
    }
    environ["REMOTE_ADDR"] = address
    if port is not None:
        environ["REMOTE_PORT"] = port
    elif address != peer:
        environ.pop("REMOTE_PORT", None)  # the proxy's port, not the client's
    proto = (used.proto or "").lower()
    if proto in _SCHEMES:
        environ["wsgi.url_scheme"] = proto
    scheme = environ.get("wsgi.url_scheme", "http")
    host = used.host if used.host and len(used.host) <= 260 and _HOST.fullmatch(used.host) else None
    forwarded_port = used.port if used.port and _is_port(used.port) else None
    if host is None and forwarded_port is None:
        if proto in _SCHEMES:
            environ["SERVER_PORT"] = _host_and_port(environ.get("HTTP_HOST", ""))[1] or _SCHEMES[scheme]
        return
    name, host_port = _host_and_port(host or environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    server_port = forwarded_port or host_port or _SCHEMES.get(scheme, "80")
    environ["SERVER_NAME"] = name
    environ["SERVER_PORT"] = server_port
    environ["HTTP_HOST"] = name if server_port == _SCHEMES.get(scheme) else f"{name}:{server_port}"


def tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Rewrite the request's environ from the trusted proxies' headers before anything reads it."""
    trusted, use_forwarded, forced = registry[_SETTINGS_KEY]
    cached = trusted._cache.get  # a C method: cheaper than any Python call

    def client_info_tween(request: Request) -> Response:
        environ = request.environ
        # The usual request, a known untrusted peer without X-Forwarded-For, costs two lookups.
        if cached(environ.get("REMOTE_ADDR")) is not False or "HTTP_X_FORWARDED_FOR" in environ:
            apply(environ, trusted, use_forwarded)
        if forced:
            force(environ, forced)
        return handler(request)

    return client_info_tween


class ClientInfoFilter:
    """The same as a WSGI middleware: ``ClientInfoFilter(app, ClientInfoSettings.resolve(settings))``."""

    def __init__(self, app: Callable[..., Any], settings: ClientInfoSettings | None = None) -> None:
        settings = settings or ClientInfoSettings.resolve(None)
        self.app = app
        self.enabled = settings.enabled
        self.trusted = TrustedNetworks(settings.trusted_proxies)
        self.use_forwarded = settings.headers == "forwarded"
        self.forced = settings.forced()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Rewrite the environ, then call the app."""
        if self.enabled:
            apply(environ, self.trusted, self.use_forwarded)
            if self.forced:
                force(environ, self.forced)
        return self.app(environ, start_response)


# Upstream 6.1's name of the middleware, ``Filter(application)``: the same class.
Filter = ClientInfoFilter


def filter_factory(global_conf: dict[str, Any], **local_conf: Any) -> Callable[[Any], ClientInfoFilter]:
    """PasteDeploy's filter: ``egg:c2cwsgiutils#client_info`` in a pipeline, or ``call:`` it."""
    settings = ClientInfoSettings.resolve({f"c2c.{key}": value for key, value in local_conf.items()})
    return lambda app: ClientInfoFilter(app, settings)


def includeme(config: Configurator) -> None:
    """Add the tween, over every other tween of the toolkit, unless ``C2C_CLIENT_INFO`` is off."""
    if not first_time(config, "client_info"):
        return
    settings = ClientInfoSettings.of(config)
    if not settings.enabled:
        return
    config.registry[_SETTINGS_KEY] = (
        TrustedNetworks(settings.trusted_proxies),
        settings.headers == "forwarded",
        settings.forced(),
    )
    config.add_tween(TWEEN, under=INGRESS, over=(request_tracking.TWEEN, MAIN))
