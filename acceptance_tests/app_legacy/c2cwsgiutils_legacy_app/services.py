"""The legacy app's cornice service, made as the original's README shows it."""

from typing import Any

from pyramid.request import Request

from c2cwsgiutils import services

hello_service = services.create("hello", "/hello", cors_credentials=True)


@hello_service.get()
def hello_get(request: Request) -> dict[str, Any]:
    """Answer a greeting, to any origin, with credentials."""
    del request
    return {"hello": True}
