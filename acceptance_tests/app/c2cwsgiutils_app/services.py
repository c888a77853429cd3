"""The example app's CORS services, made as the README shows (``services.create``).

A page of another origin may call both; only ``/api/cors/credentials`` gets the caller's cookies
(``fetch(..., {credentials: "include"})``), which it answers back to show that they came.
"""

from typing import Any

from pyramid.request import Request

from c2cwsgiutils import services

credentials_service = services.create("cors_credentials", "/api/cors/credentials", cors_credentials=True)
public_service = services.create("cors_public", "/api/cors/public")


def _needs_value(request: Request, **kwargs: Any) -> None:
    """Validate the POSTed JSON: ``{"value": "..."}``; a failure is a JSON 400 listing the errors."""
    try:
        value = request.json_body.get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        request.errors.add("body", "value", "a non-empty string is required")
    else:
        request.validated["value"] = value


@credentials_service.get()
def credentials_get(request: Request) -> dict[str, Any]:
    """Answer the cookie the caller's browser sent, if any."""
    return {"cors": True, "cookie": request.cookies.get("example")}


@credentials_service.post(validators=(_needs_value,))
def credentials_post(request: Request) -> dict[str, Any]:
    """Echo a validated value (a JSON POST: the browser sends a preflight first)."""
    return {"value": request.validated["value"], "cookie": request.cookies.get("example")}


@public_service.get()
def public_get(request: Request) -> dict[str, Any]:
    """Answer any origin, without credentials."""
    return {"cors": True}
