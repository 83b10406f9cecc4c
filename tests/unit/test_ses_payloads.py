"""Mapping SES payloads of both families to feedback drafts."""

from __future__ import annotations

from typing import Any

import pytest

from service.feedback.ses import SesFeedback, Unrecognized, parse_ses_payload
from tests import ses_payloads as ses

SES_ID = "0100018c-ses-message-id-000000"
ALICE = "alice@example.com"
BOB = "bob@example.com"


def parsed(payload: Any) -> SesFeedback:
    result = parse_ses_payload(payload, "sns-1")
    assert isinstance(result, SesFeedback), result
    return result


@pytest.mark.parametrize("family", ["notification", "event"])
@pytest.mark.parametrize(
    ("build", "event_type"),
    [
        (ses.bounce, "EmailBounced"),
        (ses.complaint, "EmailComplained"),
        (ses.delivery, "EmailDelivered"),
    ],
)
def test_both_families_map(build: Any, event_type: str, family: ses.Family) -> None:
    """Bounce, Complaint and Delivery map the same way under notificationType and eventType."""
    result = parsed(build(SES_ID, [ALICE], family=family))
    assert result.ses_message_id == SES_ID
    assert [d.event_type for d in result.drafts] == [event_type]
    assert result.drafts[0].recipient == ALICE
    source = "notification" if family == "notification" else "event_publishing"
    assert result.drafts[0].fields["source"] == source
    assert result.drafts[0].occurred_at is not None


@pytest.mark.parametrize(
    ("payload", "event_type"),
    [
        (ses.reject(SES_ID, [ALICE]), "EmailRejected"),
        (ses.open_(SES_ID, [ALICE]), "EmailOpened"),
        (ses.click(SES_ID, [ALICE]), "EmailClicked"),
        (ses.rendering_failure(SES_ID, [ALICE]), "EmailRenderingFailed"),
        (ses.delivery_delay(SES_ID, [ALICE]), "EmailDeliveryDelayed"),
        (ses.subscription(SES_ID, [ALICE]), "EmailUnsubscribed"),
    ],
)
def test_event_publishing_types_map(payload: dict[str, Any], event_type: str) -> None:
    result = parsed(payload)
    assert [d.event_type for d in result.drafts] == [event_type]
    assert result.drafts[0].recipient == ALICE


def test_bounce_fields() -> None:
    draft = parsed(ses.bounce(SES_ID, [ALICE])).drafts[0]
    assert draft.fields["bounce_type"] == "Permanent"
    assert draft.fields["bounce_subtype"] == "General"
    assert draft.fields["status"] == "5.1.1"
    assert draft.fields["diagnostic_code"] == "smtp; 550 5.1.1 user unknown"
    assert draft.fields["extra"]["feedbackId"] == "0100017f-bounce-feedback-000000"


def test_bounced_recipients_with_only_address() -> None:
    """action, status and diagnosticCode are optional per bounced recipient."""
    draft = parsed(ses.bounce(SES_ID, [ALICE], minimal_recipients=True)).drafts[0]
    assert draft.fields["action"] is None
    assert draft.fields["status"] is None
    assert draft.fields["diagnostic_code"] is None


def test_several_recipients_get_one_draft_each() -> None:
    for payload in (ses.bounce(SES_ID, [ALICE, BOB]), ses.delivery(SES_ID, [ALICE, BOB])):
        assert [d.recipient for d in parsed(payload).drafts] == [ALICE, BOB]


def test_request_tag_read_from_mail_tags() -> None:
    result = parsed(
        ses.delivery(SES_ID, [ALICE], request_id="4f1c6c1e-0000-4000-8000-000000000001")
    )
    assert result.request_tag == "4f1c6c1e-0000-4000-8000-000000000001"


def test_send_event_has_no_drafts() -> None:
    """A Send event adds nothing to EmailSent, but still names its message and tag."""
    result = parsed(ses.send(SES_ID, [ALICE], request_id="r"))
    assert result.drafts == []
    assert result.request_tag == "r"


def test_click_keeps_link() -> None:
    draft = parsed(ses.click(SES_ID, [ALICE], link="https://example.com/a?b=1&c=2")).drafts[0]
    assert draft.fields["link"] == "https://example.com/a?b=1&c=2"
    assert draft.fields["source"] == "ses"


def test_missing_optional_fields_do_not_fail() -> None:
    """commonHeaders, headers, tags and timestamps may all be missing."""
    payload = ses.delivery(SES_ID, [ALICE])
    for key in ("commonHeaders", "headers", "tags", "timestamp"):
        del payload["mail"][key]
    for key in ("smtpResponse", "processingTimeMillis", "timestamp"):
        del payload["delivery"][key]
    draft = parsed(payload).drafts[0]
    assert draft.fields["smtp_response"] is None
    assert draft.occurred_at is None


def test_new_fields_are_kept() -> None:
    payload = ses.bounce(SES_ID, [ALICE])
    payload["bounce"]["brandNewField"] = {"x": 1}
    draft = parsed(payload).drafts[0]
    assert draft.fields["extra"]["brandNewField"] == {"x": 1}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"eventType": "Teleport", "mail": {}}, "not one this version maps"),
        ({"hello": 1}, "neither eventType nor notificationType"),
        (["list"], "not a JSON object"),
        ({"notificationType": "Bounce"}, "mail is missing"),
        ({"notificationType": "Bounce", "mail": {"messageId": "m"}}, "bounce is missing"),
        (
            {
                "notificationType": "Bounce",
                "mail": {"messageId": "m"},
                "bounce": {"bouncedRecipients": []},
            },
            "names no recipient",
        ),
        (ses.subscription(SES_ID, [ALICE], unsubscribe_all=False), "does not unsubscribe"),
    ],
)
def test_unmappable_payloads_are_unrecognized(payload: Any, reason: str) -> None:
    result = parse_ses_payload(payload, "sns-1")
    assert isinstance(result, Unrecognized)
    assert reason in result.reason
