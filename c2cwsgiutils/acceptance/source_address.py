"""``requests`` sessions that connect from a chosen local address.

On Linux all of ``127.0.0.0/8`` is loopback, so a test can stand for several machines on one host:
a client on ``127.0.0.3``, a reverse proxy on ``127.0.0.2``, and check what the app believes
about each (``C2C_TRUSTED_PROXIES``)::

    from c2cwsgiutils.acceptance.source_address import session_from

    session_from("127.0.0.3").get(url, headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
"""

from typing import Any

import requests
import requests.adapters


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """An HTTP adapter whose connections are bound to ``source`` (any free port)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Make the pool with the source address."""
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(source: str) -> requests.Session:
    """Return a session whose ``http://`` and ``https://`` connections come from ``source``."""
    session = requests.Session()
    adapter = SourceAddressAdapter(source)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
