"""Outcomes and SES payloads of the local mailbox simulator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.local.mailbox_simulator import (
    Outcome,
    SentEmail,
    feedback_payload,
    outcome_for,
)

SENT_AT = datetime(2026, 12, 4, 20, 0, 0, 123000, tzinfo=UTC)
NOW = datetime(2026, 12, 4, 20, 0, 1, tzinfo=UTC)


def sent_to(recipient: str) -> SentEmail:
    return SentEmail(
        request_id="7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10",
        ses_message_id="0100018c-local-message",
        recipient=recipient,
        sender="sender@localhost.localdomain",
        sent_at=SENT_AT,
    )


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("success@simulator.amazonses.com", Outcome.DELIVERY),
        ("bounce@simulator.amazonses.com", Outcome.HARD_BOUNCE),
        ("complaint@simulator.amazonses.com", Outcome.COMPLAINT),
        ("suppressionlist@simulator.amazonses.com", Outcome.SUPPRESSED_BOUNCE),
        ("ooto@simulator.amazonses.com", Outcome.DELIVERY),
        ("bounce+newsletter@simulator.amazonses.com", Outcome.HARD_BOUNCE),
        ("Complaint@Simulator.AmazonSES.com", Outcome.COMPLAINT),
        ("bounce@example.com", Outcome.DELIVERY),
        ("someone@example.com", Outcome.DELIVERY),
        ("unknown@simulator.amazonses.com", Outcome.DELIVERY),
    ],
)
def test_outcome_for_address(recipient: str, expected: Outcome) -> None:
    """Simulator addresses get their documented outcome; every other address is delivered."""
    assert outcome_for(recipient) is expected


def test_delivery_payload() -> None:
    """A delivery names the message, the recipient and the request id tag."""
    payload = feedback_payload(sent_to("success@simulator.amazonses.com"), "eu-west-1", NOW)
    assert payload["eventType"] == "Delivery"
    assert payload["mail"]["messageId"] == "0100018c-local-message"
    assert payload["mail"]["destination"] == ["success@simulator.amazonses.com"]
    assert payload["mail"]["tags"] == {"request_id": ["7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10"]}
    assert payload["mail"]["timestamp"] == "2026-12-04T20:00:00.123Z"
    assert payload["mail"]["sourceArn"].startswith("arn:aws:ses:eu-west-1:")
    assert payload["delivery"]["recipients"] == ["success@simulator.amazonses.com"]
    assert payload["delivery"]["timestamp"] == "2026-12-04T20:00:01.000Z"


def test_hard_bounce_payload() -> None:
    """bounce@ is a permanent, general bounce with an SMTP diagnostic."""
    payload = feedback_payload(sent_to("bounce@simulator.amazonses.com"), "us-east-1", NOW)
    assert payload["eventType"] == "Bounce"
    assert payload["bounce"]["bounceType"] == "Permanent"
    assert payload["bounce"]["bounceSubType"] == "General"
    recipient = payload["bounce"]["bouncedRecipients"][0]
    assert recipient["emailAddress"] == "bounce@simulator.amazonses.com"
    assert recipient["status"] == "5.1.1"
    assert recipient["action"] == "failed"


def test_suppressed_bounce_payload() -> None:
    """suppressionlist@ is a permanent bounce of subtype Suppressed."""
    payload = feedback_payload(
        sent_to("suppressionlist@simulator.amazonses.com"), "us-east-1", NOW
    )
    assert payload["eventType"] == "Bounce"
    assert payload["bounce"]["bounceType"] == "Permanent"
    assert payload["bounce"]["bounceSubType"] == "Suppressed"


def test_complaint_payload() -> None:
    """complaint@ is an abuse complaint naming the recipient."""
    payload = feedback_payload(sent_to("complaint@simulator.amazonses.com"), "us-east-1", NOW)
    assert payload["eventType"] == "Complaint"
    complaint = payload["complaint"]
    assert complaint["complainedRecipients"] == [
        {"emailAddress": "complaint@simulator.amazonses.com"}
    ]
    assert complaint["complaintFeedbackType"] == "abuse"
    assert "bounce" not in payload
