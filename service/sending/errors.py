"""Errors of submission and cancellation, each with the HTTP status a client should see.

The core raises these without knowing about HTTP; the controllers turn them into the JSON
error body. `field` is the path of the offending value in the request, such as
`messages[0].scheduledAt`, or a header or path parameter name.
"""

from __future__ import annotations

from service.errors import ServiceError


class RequestRejected(ServiceError):
    """A client request that cannot be carried out as sent."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(RequestRejected):
    status = 400


class RequestTooLarge(RequestRejected):
    status = 413


class EmailNotFound(RequestRejected):
    status = 404


class Conflict(RequestRejected):
    status = 409
