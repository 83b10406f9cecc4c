"""The error responses every operation can return, documented once for the whole OpenAPI document.

Litestar documents a 400 with its own error shape by default; the API returns every error as
`ErrorBody` instead. This adds the shared cases to each route handler, and a handler's own
`responses` still win:

- 400 for any operation, since query strings, headers and bodies are validated;
- 401 for operations that declare the API key security requirement;
- 404 for operations with path parameters (unknown ids, and ids of the wrong form);
- 413 for operations that take a request body larger than MAX_REQUEST_BYTES.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec

from service.api.auth import SECURITY_SCHEME_NAME
from service.api.errors import ErrorBody

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(ErrorBody, description=description, generate_examples=False)


def document_error_responses(app: Litestar) -> None:
    """Add the shared error responses to every HTTP route handler of `app`."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema:
                handler.responses = {**shared_error_responses(handler), **(handler.responses or {})}


def shared_error_responses(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    responses = {400: _error("Invalid request: the message names the field and the fix.")}
    if any(SECURITY_SCHEME_NAME in requirement for requirement in handler.resolve_security()):
        responses[401] = _error("Missing or invalid x-api-key header.")
    if any("{" in path for path in handler.paths):
        responses[404] = _error("Nothing exists at this path.")
    if handler.http_methods & _BODY_METHODS:
        responses[413] = _error("The request body is larger than MAX_REQUEST_BYTES.")
    return responses
