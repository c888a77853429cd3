"""JSON responses, serialised with orjson, for the toolkit's views and error views."""

from typing import Any

import orjson
from pyramid.response import Response


def json_response(body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    """Return a JSON response."""
    response = Response(body=orjson.dumps(body), status=status, charset="utf-8")
    response.content_type = "application/json"
    if headers:
        response.headerlist.extend(headers)
    return response


def json_error(status: int, message: str, request_id: str | None = None, **extra: Any) -> Response:
    """Return the toolkit's error body, ``{"status": N, "message": "...", "request_id": "..."}``."""
    body: dict[str, Any] = {"status": status, "message": message}
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return json_response(body, status=status)
