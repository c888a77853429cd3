"""A WSGI app factory for loader tests: it answers with the settings it was given, as JSON."""

import json
from collections.abc import Callable, Iterable
from typing import Any


def factory(global_config: dict[str, str], **settings: str) -> Callable[..., Iterable[bytes]]:
    """Return a WSGI app that answers the settings it received."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(settings).encode()]

    app.settings = settings  # type: ignore[attr-defined]
    return app
