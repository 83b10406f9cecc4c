"""What SES reports for the addresses of its mailbox simulator, as SES event payloads.

SES gives mail to these addresses at `simulator.amazonses.com` a fixed outcome. Local mode
plays the same part for every sent email, and any other address gets a delivery.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SIMULATOR_DOMAIN = "simulator.amazonses.com"
# An account id that no AWS account has, for the ARNs inside simulated payloads.
LOCAL_ACCOUNT_ID = "000000000000"
REPORTING_MTA = "local.smtp-out.amazonses.com"
# The tag under which the dispatcher sends each email's request id.
REQUEST_ID_TAG = "request_id"


class Outcome(enum.Enum):
    DELIVERY = "delivery"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    SUPPRESSED_BOUNCE = "suppressed_bounce"


_SIMULATOR_OUTCOMES = {
    "success": Outcome.DELIVERY,
    "bounce": Outcome.HARD_BOUNCE,
    "complaint": Outcome.COMPLAINT,
    "suppressionlist": Outcome.SUPPRESSED_BOUNCE,
    # The out-of-office address is delivered; the auto-reply goes to the sender, not to SNS.
    "ooto": Outcome.DELIVERY,
}


def outcome_for(recipient: str) -> Outcome:
    """Return the outcome SES's mailbox simulator gives `recipient`; delivery for others.

    A `+label` suffix counts as the base address, as the SES mailbox simulator treats it.
    """
    local_part, _, domain = recipient.rpartition("@")
    if domain.lower() != SIMULATOR_DOMAIN:
        return Outcome.DELIVERY
    base = local_part.split("+", 1)[0].lower()
    return _SIMULATOR_OUTCOMES.get(base, Outcome.DELIVERY)


@dataclass(frozen=True)
class SentEmail:
    """One email that SES accepted, with what a feedback payload names."""

    request_id: str
    ses_message_id: str
    recipient: str
    sender: str
    sent_at: datetime


def feedback_payload(email: SentEmail, region: str, now: datetime | None = None) -> dict[str, Any]:
    """Build the SES event-publishing payload that reports the outcome for `email`."""
    at = _timestamp(now or datetime.now(UTC))
    outcome = outcome_for(email.recipient)
    mail = _mail(email, region)
    if outcome is Outcome.DELIVERY:
        return {"eventType": "Delivery", "mail": mail, "delivery": _delivery(email, at)}
    if outcome is Outcome.COMPLAINT:
        return {"eventType": "Complaint", "mail": mail, "complaint": _complaint(email, at)}
    return {"eventType": "Bounce", "mail": mail, "bounce": _bounce(email, at, outcome)}


def _timestamp(moment: datetime) -> str:
    # SES writes millisecond UTC timestamps with a Z.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _mail(email: SentEmail, region: str) -> dict[str, Any]:
    return {
        "timestamp": _timestamp(email.sent_at),
        "source": email.sender,
        "sourceArn": f"arn:aws:ses:{region}:{LOCAL_ACCOUNT_ID}:identity/{email.sender}",
        "sendingAccountId": LOCAL_ACCOUNT_ID,
        "messageId": email.ses_message_id,
        "destination": [email.recipient],
        "headersTruncated": False,
        "tags": {REQUEST_ID_TAG: [email.request_id]},
    }


def _delivery(email: SentEmail, at: str) -> dict[str, Any]:
    return {
        "timestamp": at,
        "processingTimeMillis": 120,
        "recipients": [email.recipient],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": REPORTING_MTA,
    }


def _complaint(email: SentEmail, at: str) -> dict[str, Any]:
    return {
        "complainedRecipients": [{"emailAddress": email.recipient}],
        "timestamp": at,
        "feedbackId": str(uuid.uuid4()),
        "userAgent": "Amazon SES Mailbox Simulator",
        "complaintFeedbackType": "abuse",
        "arrivalDate": at,
    }


def _bounce(email: SentEmail, at: str, outcome: Outcome) -> dict[str, Any]:
    if outcome is Outcome.SUPPRESSED_BOUNCE:
        subtype = "Suppressed"
        diagnostic = (
            "Amazon SES has suppressed sending to this address because it has a recent "
            "history of bouncing as an invalid address."
        )
    else:
        subtype = "General"
        diagnostic = "smtp; 550 5.1.1 user unknown"
    return {
        "bounceType": "Permanent",
        "bounceSubType": subtype,
        "bouncedRecipients": [
            {
                "emailAddress": email.recipient,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": diagnostic,
            }
        ],
        "timestamp": at,
        "feedbackId": str(uuid.uuid4()),
        "reportingMTA": f"dsn; {REPORTING_MTA}",
    }
