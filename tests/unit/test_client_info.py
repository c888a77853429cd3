"""Client info from trusted proxies: the parser (with properties) and the environ.

Under c2cwsgiutils_run, with a real reverse proxy: tests/test_client_info_server.py.
"""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2cwsgiutils import client_info
from c2cwsgiutils.client_info import TrustedNetworks, apply, parse_forwarded, parse_networks, parse_node
from tests.apps import make_app

PROXY = "10.0.0.2"
TRUSTED = TrustedNetworks(parse_networks("10.0.0.0/24,2001:db8:aa::/48,127.0.0.1"))


def environ(peer: str = PROXY, **headers: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "REMOTE_ADDR": peer,
        "REMOTE_PORT": "50000",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "app:8080",
        "SERVER_NAME": "app",
        "SERVER_PORT": "8080",
    }
    base.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return base


def applied(peer: str = PROXY, use_forwarded: bool = False, **headers: str) -> dict[str, Any]:
    result = environ(peer, **headers)
    apply(result, TRUSTED, use_forwarded)
    return result


# The parsers.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", None)),
        (" 192.0.2.1:4711 ", ("192.0.2.1", "4711")),
        ("[2001:db8::1]:80", ("2001:db8::1", "80")),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("2001:DB8::1", ("2001:db8::1", None)),
        ("::ffff:192.0.2.1", ("192.0.2.1", None)),
        ("192.0.2.1:_port", ("192.0.2.1", None)),
        ("unknown", None),
        ("_hidden", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("999.1.1.1", None),
        ("", None),
    ],
)
def test_parse_node(text: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_node(text) == expected


def test_parse_forwarded_reads_quoted_strings_and_several_elements() -> None:
    header = 'for=192.0.2.60;proto=https;by=203.0.113.43, For="[2001:db8:cafe::17]:4711";host="a\\"b"'
    assert parse_forwarded(header) == [
        {"for": "192.0.2.60", "proto": "https", "by": "203.0.113.43"},
        {"for": "[2001:db8:cafe::17]:4711", "host": 'a"b'},
    ]


@pytest.mark.parametrize("header", ['for="192.0.2.1', "for=1.2.3.4;for=5.6.7.8", "for", "for=a b", "=x"])
def test_parse_forwarded_refuses_malformed_headers(header: str) -> None:
    assert parse_forwarded(header) is None


def test_parse_networks_names_the_bad_item() -> None:
    with pytest.raises(ValueError, match="'nope' is not a network"):
        parse_networks("10.0.0.0/8, nope")


# The environ.


def test_a_direct_client_keeps_its_address_whatever_it_sends() -> None:
    result = applied("198.51.100.7", x_forwarded_for="1.2.3.4", x_forwarded_proto="https")
    # X-Forwarded-For is made to agree, as WebOb's request.client_addr reads it.
    assert result == {
        **environ("198.51.100.7", x_forwarded_for="198.51.100.7", x_forwarded_proto="https"),
        client_info.ORIGINAL: {"HTTP_X_FORWARDED_FOR": "1.2.3.4"},
    }


def test_the_client_of_a_trusted_proxy_is_the_rightmost_untrusted_hop() -> None:
    result = applied(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.9")
    assert result["REMOTE_ADDR"] == "198.51.100.7"
    assert "REMOTE_PORT" not in result  # the proxy's port was not the client's
    assert applied(x_forwarded_for="198.51.100.7:4711")["REMOTE_PORT"] == "4711"
    assert result[client_info.ORIGINAL]["REMOTE_ADDR"] == PROXY


def test_scheme_host_and_port_come_from_the_clients_hop() -> None:
    result = applied(
        x_forwarded_for="198.51.100.7",
        x_forwarded_proto="https",
        x_forwarded_host="www.example.com",
        x_forwarded_port="443",
    )
    assert (result["wsgi.url_scheme"], result["HTTP_HOST"], result["SERVER_NAME"], result["SERVER_PORT"]) == (
        "https",
        "www.example.com",
        "www.example.com",
        "443",
    )


def test_a_non_default_forwarded_port_stays_in_the_host() -> None:
    result = applied(x_forwarded_for="198.51.100.7", x_forwarded_host="example.com", x_forwarded_port="8443")
    assert result["HTTP_HOST"] == "example.com:8443"


def test_a_malformed_hop_stops_at_the_last_trusted_one() -> None:
    assert applied(x_forwarded_for="198.51.100.7, bad!, 10.0.0.9")["REMOTE_ADDR"] == "10.0.0.9"


def test_a_port_of_non_ascii_digits_is_ignored() -> None:
    result = applied(x_forwarded_for="198.51.100.7", x_forwarded_port="\u00b9", x_forwarded_host="a")
    assert result["HTTP_HOST"] == "a"
    assert parse_node("198.51.100.7:\u00b9") == ("198.51.100.7", None)


def test_a_bad_host_or_proto_is_ignored() -> None:
    result = applied(x_forwarded_for="198.51.100.7", x_forwarded_proto="gopher", x_forwarded_host="a b/c")
    assert (result["REMOTE_ADDR"], result["wsgi.url_scheme"], result["HTTP_HOST"]) == (
        "198.51.100.7",
        "http",
        "app:8080",
    )


def test_forwarded_is_read_only_when_asked() -> None:
    header = 'for=192.0.2.60;proto=https;host=example.org, for="[2001:db8:aa::5]:4711"'
    assert applied(forwarded=header)["REMOTE_ADDR"] == PROXY
    result = applied(use_forwarded=True, forwarded=header, x_forwarded_for="6.6.6.6")
    assert (result["REMOTE_ADDR"], result["wsgi.url_scheme"], result["HTTP_HOST"]) == (
        "192.0.2.60",
        "https",
        "example.org",
    )


def test_an_obfuscated_forwarded_node_stops_the_walk() -> None:
    result = applied(use_forwarded=True, forwarded="for=192.0.2.60, for=_hidden;proto=https")
    assert result["REMOTE_ADDR"] == PROXY
    assert result["wsgi.url_scheme"] == "http"


def test_proto_alone_from_a_trusted_peer_sets_the_scheme() -> None:
    result = applied("127.0.0.1", x_forwarded_proto="https")
    assert (result["REMOTE_ADDR"], result["wsgi.url_scheme"]) == ("127.0.0.1", "https")


def test_applying_twice_changes_nothing_more() -> None:
    once = applied(x_forwarded_for="10.0.0.7, 10.0.0.8")
    twice = dict(once)
    apply(twice, TRUSTED)
    assert twice == once


# Properties.

_ipv4 = st.ip_addresses(v=4).map(str)
_any_ip = st.ip_addresses().map(str)
_header_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=80)


@settings(max_examples=1000, deadline=None)
@given(peer=_any_ip, forwarded=_header_text, xff=_header_text, proto=_header_text, host=_header_text)
def test_apply_never_raises(peer: str, forwarded: str, xff: str, proto: str, host: str) -> None:
    for use_forwarded in (False, True):
        env = environ(
            peer,
            forwarded=forwarded,
            x_forwarded_for=xff,
            x_forwarded_proto=proto,
            x_forwarded_host=host,
            x_forwarded_port=proto,
        )
        apply(env, TrustedNetworks(parse_networks("0.0.0.0/0,::/0")), use_forwarded)
        apply(environ(peer, forwarded=forwarded, x_forwarded_for=xff), TRUSTED, use_forwarded)


@settings(max_examples=300, deadline=None)
@given(
    forged=_header_text,
    client=_any_ip,
    proxies=st.lists(st.sampled_from(["10.0.0.3", "10.0.0.4"]), max_size=3),
)
def test_a_client_cannot_spoof_its_address_through_trusted_proxies(
    forged: str, client: str, proxies: list[str]
) -> None:
    """Whatever a client sends, each trusted proxy appends what it saw: the result is the client."""
    if client in TRUSTED:
        return  # a trusted client may speak for others; covered by the next property
    chain = forged
    for hop in [client, *proxies]:
        chain = f"{chain}, {hop}" if chain else hop
    env = environ(PROXY, x_forwarded_for=chain)
    apply(env, TRUSTED)
    assert (env["REMOTE_ADDR"], None) == parse_node(client)


@settings(max_examples=300, deadline=None)
@given(
    forged=_header_text,
    client=_any_ip,
    proxies=st.lists(st.sampled_from(["10.0.0.3", "2001:db8:aa::9"]), max_size=3),
)
def test_a_client_cannot_spoof_its_address_through_proxies_appending_forwarded(
    forged: str, client: str, proxies: list[str]
) -> None:
    """The same with RFC 7239 elements (IPv6 in brackets), whatever the client wrote before them."""
    if client in TRUSTED:
        return
    elements = [f'for="[{hop}]:4711"' if ":" in hop else f"for={hop}" for hop in [client, *proxies]]
    header = ", ".join([forged, *elements]) if forged else ", ".join(elements)
    env = environ(PROXY, forwarded=header)
    apply(env, TRUSTED, use_forwarded=True)
    # A forged prefix that does not parse makes the whole header ignored: the peer, never a forgery.
    assert env["REMOTE_ADDR"] in {parse_node(client)[0], PROXY}  # type: ignore[index]
    if parse_forwarded(header) is not None:
        assert env["REMOTE_ADDR"] == parse_node(client)[0]  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(hops=st.lists(_any_ip, max_size=5), peer=_any_ip)
def test_the_address_is_never_one_behind_an_untrusted_hop(hops: list[str], peer: str) -> None:
    """The result is the peer, or a hop with only trusted hops (and the peer) on its right."""
    env = environ(peer, x_forwarded_for=", ".join(hops))
    apply(env, TRUSTED)
    result = env["REMOTE_ADDR"]
    if result == peer and (peer not in TRUSTED or not hops):
        return
    normalised = [parse_node(hop)[0] for hop in hops]  # type: ignore[index]
    index = len(normalised) - 1 - normalised[::-1].index(result)
    assert peer in TRUSTED
    assert all(hop in TRUSTED for hop in normalised[index + 1 :])


def test_the_cache_of_trusted_answers_stays_bounded_and_keeps_answering() -> None:
    trusted = TrustedNetworks(parse_networks("10.0.0.0/8"))
    for index in range(3000):
        assert trusted.trusts(f"10.0.{index // 256}.{index % 256}")
        assert not trusted.trusts(f"192.0.{index // 256}.{index % 256}")
    assert len(trusted._cache) <= client_info._MAX_CACHE


def test_an_empty_peer_a_unix_socket_does_not_let_x_forwarded_for_speak() -> None:
    result = applied("", x_forwarded_for="203.0.113.9")
    assert (result["REMOTE_ADDR"], result["HTTP_X_FORWARDED_FOR"]) == ("", "")


# C2CWSGIUTILS_FORCE_*: upstream 6.1's settings (c2cgeoportal's compose sample sets the proto).


def test_forced_values_win_over_the_proxies_and_the_server() -> None:
    settings = client_info.ClientInfoSettings.resolve(
        None,
        {
            "C2CWSGIUTILS_FORCE_PROTO": "HTTPS",
            "C2CWSGIUTILS_FORCE_HOST": "geo.test:8443",
            "C2CWSGIUTILS_FORCE_SERVER_NAME": "geo.test",
            "C2CWSGIUTILS_FORCE_REMOTE_ADDR": "198.51.100.7",
        },
    )
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return []

    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost:8080",
        "SERVER_NAME": "localhost",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_X_FORWARDED_PROTO": "http",
    }
    client_info.ClientInfoFilter(app, settings)(environ, lambda status, headers: None)
    assert (seen["wsgi.url_scheme"], seen["HTTP_HOST"], seen["SERVER_NAME"]) == (
        "https",
        "geo.test:8443",
        "geo.test",
    )
    assert (seen["REMOTE_ADDR"], seen["HTTP_X_FORWARDED_FOR"]) == ("198.51.100.7", "198.51.100.7")
    assert seen[client_info.ORIGINAL]["REMOTE_ADDR"] == "127.0.0.1"


def test_nothing_is_forced_by_default() -> None:
    assert client_info.ClientInfoSettings.resolve(None, {}).forced() == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("C2CWSGIUTILS_FORCE_PROTO", "ftp"),
        ("C2CWSGIUTILS_FORCE_HOST", "a host"),
        ("C2CWSGIUTILS_FORCE_SERVER_NAME", "x/y"),
        ("C2CWSGIUTILS_FORCE_REMOTE_ADDR", "not-an-address"),
    ],
)
def test_a_bad_forced_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        client_info.ClientInfoSettings.resolve(None, {name: value})


def test_the_tween_forces_the_ini_s_values_too() -> None:
    def where(request: Any) -> dict[str, str]:
        return {"scheme": request.scheme, "host": request.host, "client": request.client_addr}

    app = make_app({"where": where}, {"c2c.force_proto": "https", "c2c.force_host": "geo.test"})
    assert app.get("/where", extra_environ={"REMOTE_ADDR": "192.0.2.4"}).json == {
        "scheme": "https",
        "host": "geo.test",
        "client": "192.0.2.4",
    }
