"""Classification of SES errors and the retry delays that follow from it."""

from __future__ import annotations

import pytest

from service.dispatch.outcomes import FailureKind, SendFailure, classify, retry_delay

CASES = [
    ("TooManyRequestsException", "Maximum sending rate exceeded.", 429, "throttled"),
    ("Throttling", "Maximum sending rate exceeded.", 400, "throttled"),
    ("TooManyRequestsException", "Daily message quota exceeded.", 429, "quota_exceeded"),
    ("Throttling", "Daily message quota exceeded.", 400, "quota_exceeded"),
    ("SendingPausedException", "Sending is paused for this account.", 400, "account_paused"),
    ("AccountSuspendedException", "The account is suspended.", 400, "account_paused"),
    ("MessageRejected", "Email address is not verified.", 400, "permanent"),
    ("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified.", 400, "permanent"),
    ("BadRequestException", "Invalid header value.", 400, "permanent"),
    ("NotFoundException", "Configuration set does not exist.", 404, "permanent"),
    ("InternalFailure", "Internal error.", 500, "transient"),
    ("ServiceUnavailable", "Service unavailable.", 503, "transient"),
    ("EndpointConnectionError", "Could not connect to the endpoint URL", None, "transient"),
    ("ReadTimeoutError", "Read timeout on endpoint URL", None, "transient"),
    ("ConnectTimeoutError", "Connect timeout on endpoint URL", None, "transient"),
]


@pytest.mark.parametrize(("code", "message", "status", "expected"), CASES)
def test_classify(code: str, message: str, status: int | None, expected: FailureKind) -> None:
    """Each SES error maps to the reaction that SES's documentation implies."""
    assert classify(SendFailure(code, message, status)) == expected


def test_throttle_retry_is_short() -> None:
    """Throttled sends come back within 1.5 s, jitter included."""
    assert 0.5 <= retry_delay("throttled", 0, 0.0) <= retry_delay("throttled", 0, 0.99) < 1.5


def test_transient_retry_backs_off() -> None:
    """Each further transient failure waits about twice as long, up to five minutes."""
    delays = [retry_delay("transient", n, 0.5) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert delays[1] == pytest.approx(2 * delays[0])
    assert delays[-1] <= 300
