"""The JSON error response for RequestRejected, the errors of the submission core."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

from service.api.errors import ErrorBody
from service.sending.errors import RequestRejected


def handle_rejected(_request: Request[Any, Any, Any], exc: RequestRejected) -> Response[ErrorBody]:
    return Response(ErrorBody(exc.status, exc.message, exc.field), status_code=exc.status)


REJECTED_HANDLERS: Any = {RequestRejected: handle_rejected}


def error_responses(*statuses: tuple[int, str]) -> dict[int, ResponseSpec]:
    """Return OpenAPI entries for error statuses, each with the error body schema."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=description)
        for status, description in statuses
    }


UNAUTHORIZED = (401, "The x-api-key header is missing or wrong.")
