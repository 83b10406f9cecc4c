"""The error a callback request ends with when it is not handled: an HTTP status and a reason."""

from __future__ import annotations

from service.errors import ServiceError


class Rejected(ServiceError):
    """The callback is answered with `status` and the one-sentence `reason`.

    4xx means SNS should not retry (malformed, unverifiable or not allowed); 503 means a
    retry could succeed (certificate fetch or database failed).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
