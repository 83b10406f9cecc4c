"""What a failed SES call means and what to do about it: a pure function of the error.

- TooManyRequestsException or Throttling with "Maximum sending rate exceeded": throttled.
  Retry soon, with jitter, and slow the shared limiter down.
- The same codes with "Daily message quota exceeded": quota_exceeded. Hold every send,
  then retry.
- SendingPausedException, AccountSuspendedException: account_paused. Hold every send and
  log an error.
- MessageRejected, MailFromDomainNotVerifiedException, BadRequestException,
  NotFoundException: permanent. Fail the email with the SES code and message.
- Connection errors, timeouts, HTTP 5xx and any other error: transient. Retry with
  backoff up to SEND_MAX_ATTEMPTS failures, then fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailureKind = Literal["throttled", "quota_exceeded", "account_paused", "permanent", "transient"]

_THROTTLING_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
_PAUSED_CODES = frozenset({"SendingPausedException", "AccountSuspendedException"})
_PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "BadRequestException",
        "NotFoundException",
    }
)


@dataclass(frozen=True)
class SendFailure:
    """A failed SES call, reduced to what classification needs."""

    code: str
    """The SES error code, or the exception class name for connection errors and timeouts."""
    message: str
    http_status: int | None = None


def classify(failure: SendFailure) -> FailureKind:
    """Return what `failure` means for the email and for sending as a whole."""
    if failure.code in _THROTTLING_CODES:
        if "daily message quota" in failure.message.lower():
            return "quota_exceeded"
        return "throttled"
    if failure.code in _PAUSED_CODES:
        return "account_paused"
    if failure.code in _PERMANENT_CODES:
        return "permanent"
    return "transient"


THROTTLE_RETRY_SECONDS = 1.0
TRANSIENT_BASE_SECONDS = 2.0
TRANSIENT_MAX_SECONDS = 300.0


def retry_delay(kind: FailureKind, transient_failures: int, jitter: float) -> float:
    """Return seconds until the next attempt; `jitter` is a random number in [0, 1).

    Throttling retries after about a second; transient failures back off exponentially
    (2 s, 4 s, 8 s, ... up to 5 minutes). The jitter spreads retries of many emails apart.
    """
    if kind == "throttled":
        return THROTTLE_RETRY_SECONDS * (0.5 + jitter)
    exponent = max(transient_failures - 1, 0)
    base = min(TRANSIENT_BASE_SECONDS * 2.0**exponent, TRANSIENT_MAX_SECONDS)
    return base * (0.5 + jitter / 2)
