"""Client info under c2cwsgiutils_run: directly, and through a reverse proxy of a few lines."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.server import AppServer
from c2cwsgiutils.acceptance.source_address import session_from
from c2cwsgiutils.acceptance.stub_server import QuietHandler, stub_server
from testing.fixtures import StartServer

APP_INI = """\
[app:main]
use = call:tests.apps.client_info:factory
c2c.trusted_proxies = 127.0.0.2/32
"""


class _Proxy(QuietHandler):
    """A reverse proxy of a few lines: appends the peer to X-Forwarded-For, connects from 127.0.0.2."""

    upstream = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
        previous = self.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = (
            f"{previous}, {self.client_address[0]}" if previous else self.client_address[0]
        )
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-Host"] = "public.example.com"
        upstream = session_from("127.0.0.2").get(self.upstream + self.path, headers=headers, timeout=10)
        self.send_body(upstream.status_code, upstream.content, upstream.headers.get("Content-Type", ""))


@pytest.fixture
def app_server(start_server: StartServer, tmp_path: Path) -> AppServer:
    ini = tmp_path / "client_info.ini"
    ini.write_text(APP_INI, encoding="utf-8")
    return start_server(
        env={"PYTHONPATH": str(Path(__file__).parents[1]), "LOG_TYPE": "json"}, config_file=ini, workers=1
    )


@pytest.fixture
def proxy(app_server: AppServer) -> Iterator[str]:
    handler = type("Proxy", (_Proxy,), {"upstream": app_server.url("").rstrip("/")})
    with stub_server(handler) as url:
        yield url


def test_a_forged_header_from_an_untrusted_peer_keeps_the_peer(app_server: AppServer) -> None:
    response = requests.get(
        app_server.url("/client"),
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"},
        timeout=10,
    )
    seen = response.json()
    assert seen["client_addr"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["url"].startswith(app_server.url(""))


def test_through_a_trusted_proxy_the_client_is_seen_in_the_app_and_the_logs(
    app_server: AppServer, proxy: str
) -> None:
    # The client (from 127.0.0.3) forges a first hop; the proxy appends the real peer, which is
    # not trusted itself: that is the client.
    response = session_from("127.0.0.3").get(
        f"{proxy}/client", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    seen = response.json()
    assert seen == {
        "client_addr": "127.0.0.3",
        "scheme": "https",
        "host": "public.example.com",
        "url": "https://public.example.com/client",
        "peer": "127.0.0.2",
    }
    # Both the app's JSON record and gunicorn's access record carry the client, not the proxy.
    records = [json.loads(line) for line in app_server.log().splitlines() if line.startswith("{")]
    app_records = [record for record in records if record.get("short_message") == "client_info_app answered"]
    access = [record for record in records if record.get("path") == "/client"]
    assert app_records[-1]["client_addr"] == "127.0.0.3"
    assert access[-1]["client_addr"] == "127.0.0.3"
    assert not any(record.get("client_addr") == "127.0.0.2" for record in app_records + access)
