"""The API key guard for the protected endpoints (`x-api-key`)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityScheme

from service.api.context import context_of
from service.api.errors import ApiError

API_KEY_HEADER = "x-api-key"
SECURITY_SCHEME_NAME = "apiKey"
SECURITY_SCHEME = SecurityScheme(
    type="apiKey",
    name=API_KEY_HEADER,
    security_scheme_in="header",
    description="The value of the API_KEY setting.",
)
SECURITY: list[dict[str, list[str]]] = [{SECURITY_SCHEME_NAME: []}]


def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Reject the request unless it carries the configured key; with none configured, reject all."""
    expected = context_of(connection.app.state).settings.api_key
    if expected is None:
        raise ApiError(
            401,
            "API_KEY is not configured on the server, so protected endpoints are closed; "
            "set API_KEY and restart.",
            API_KEY_HEADER,
        )
    supplied = connection.headers.get(API_KEY_HEADER)
    if supplied is None:
        raise ApiError(401, f"Missing {API_KEY_HEADER} header.", API_KEY_HEADER)
    if not expected.matches(supplied):
        raise ApiError(401, f"Invalid {API_KEY_HEADER} header.", API_KEY_HEADER)
