"""What the legacy suite's conftest and tests share: the app's ini, the origin, the stub dependency."""

from http import HTTPStatus
from pathlib import Path
from typing import ClassVar

from c2cwsgiutils.acceptance.stub_server import QuietHandler

LEGACY_INI = Path(__file__).parent.parent / "app_legacy" / "production.ini"
ORIGIN = "http://example.com"
"""The origin of the suite's connections, as the original's ``Connection(base_url, origin)`` took it."""


class Dependency(QuietHandler):
    """The service behind the app's URL check: ``{"status": "ok"}``, with the status of :attr:`status`."""

    status: ClassVar[int] = HTTPStatus.OK

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_body(self.status, b'{"status": "ok"}')
