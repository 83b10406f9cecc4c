"""JSON error responses: the HTTP status, one plain sentence, and the offending field.

A stack trace or a database message never reaches a client. Unexpected errors are logged
with their cause, and the client gets a generic 500 sentence.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from service.logging import get_logger

log = get_logger(__name__)


class ErrorBody(msgspec.Struct):
    """The body of every error response."""

    status: int
    error: str
    field: str | None = None


class ApiError(HTTPException):
    """An error meant for the client, with the name of the field at fault when there is one."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(detail=message, status_code=status_code)
        self.field = field


def _json(status: int, message: str, field: str | None, headers: dict[str, str] | None = None
          ) -> Response[ErrorBody]:
    return Response(ErrorBody(status, message, field), status_code=status, headers=headers)


_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
# msgspec's messages for a body that is not JSON at all, as opposed to JSON of the wrong shape.
_NOT_JSON = re.compile(r"^(JSON is malformed|Input data was truncated|Input data was empty)")


def _field_path(message: str, path: str) -> str:
    """Return the path of the offending field; a missing field is named itself, not its parent."""
    path = path.lstrip(".")
    missing = _MISSING_FIELD.match(message)
    if missing:
        return f"{path}.{missing.group('name')}" if path else missing.group("name")
    return path


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """Turn Litestar's msgspec message ("Expected `str`, got `int` - at `$.x`") into ours."""
    extra: Any = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        first = extra[0]
        key = first.get("key")
        message = str(first.get("message") or exc.detail)
        match = _MSGSPEC_PATH.match(message)
        if match and match.group("path") is not None:
            field = _field_path(match.group("message"), match.group("path"))
            return f"{match.group('message')} at {field}", field
        if key:
            field = _field_path(message, str(key))
            return f"{message} at {field}", field
        return message, None
    detail = str(exc.detail)
    match = _MSGSPEC_PATH.match(detail)
    if match and match.group("path") is not None:
        field = _field_path(match.group("message"), match.group("path"))
        return f"{match.group('message')} at {field}", field
    return detail, None


def _not_json(message: str) -> str:
    if _NOT_JSON.match(message):
        return f"The request body is not valid JSON: {message}. Send one JSON object."
    return message


def handle_api_error(_request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    return _json(exc.status_code, str(exc.detail), exc.field, exc.headers)


def handle_validation(
    _request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ErrorBody]:
    message, field = _validation_message(exc)
    return _json(400, f"Invalid request: {message}.", field)


def handle_http(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    # Litestar rejects a body it cannot decode with a 400 that carries msgspec's bare message.
    message = _not_json(str(exc.detail)) if exc.status_code == 400 else str(exc.detail)
    return _json(exc.status_code, message, None, exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("request_failed", method=request.method, path=request.url.path, exc_info=exc)
    return _json(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal server error; the cause is in the service log.",
        None,
    )


EXCEPTION_HANDLERS: Any = {
    ApiError: handle_api_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
