"""SES feedback payloads shaped like the samples in the Amazon SES Developer Guide
("Examples of Amazon SNS notifications" and "Examples of event data published to SNS").

Each builder returns a dict; `family` chooses `notificationType` (identity notifications) or
`eventType` (configuration-set event publishing).
"""

from __future__ import annotations

from typing import Any, Literal

Family = Literal["notification", "event"]

SENDER = "sender@example.com"
TIMESTAMP = "2026-12-04T10:00:00.000Z"


def mail(
    ses_message_id: str, recipients: list[str], request_id: str | None = None
) -> dict[str, Any]:
    tags: dict[str, list[str]] = {
        "ses:configuration-set": ["feedback"],
        "ses:source-ip": ["192.0.2.0"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["ses_user"],
    }
    if request_id is not None:
        tags["request_id"] = [request_id]
        tags["topic_id"] = ["newsletter"]
    return {
        "timestamp": TIMESTAMP,
        "source": SENDER,
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": ses_message_id,
        "destination": recipients,
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": SENDER},
            {"name": "To", "value": ", ".join(recipients)},
            {"name": "Subject", "value": "Message sent from Amazon SES"},
            {"name": "MIME-Version", "value": "1.0"},
        ],
        "commonHeaders": {
            "from": [SENDER],
            "to": recipients,
            "messageId": ses_message_id,
            "subject": "Message sent from Amazon SES",
        },
        "tags": tags,
    }


def _wrap(
    family: Family, kind: str, body_key: str, body: Any, mail_part: dict[str, Any]
) -> dict[str, Any]:
    type_key = "notificationType" if family == "notification" else "eventType"
    return {type_key: kind, body_key: body, "mail": mail_part}


def bounce(
    ses_message_id: str,
    recipients: list[str],
    *,
    family: Family = "notification",
    bounce_type: str = "Permanent",
    request_id: str | None = None,
    minimal_recipients: bool = False,
) -> dict[str, Any]:
    bounced: list[dict[str, Any]] = [
        {"emailAddress": r}
        if minimal_recipients
        else {
            "emailAddress": r,
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
        }
        for r in recipients
    ]
    body = {
        "bounceType": bounce_type,
        "bounceSubType": "General",
        "bouncedRecipients": bounced,
        "timestamp": "2026-12-04T10:00:02.000Z",
        "feedbackId": "0100017f-bounce-feedback-000000",
        "remoteMtaIp": "127.0.2.0",
        "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
    }
    return _wrap(family, "Bounce", "bounce", body, mail(ses_message_id, recipients, request_id))


def complaint(
    ses_message_id: str,
    recipients: list[str],
    *,
    family: Family = "notification",
    request_id: str | None = None,
) -> dict[str, Any]:
    body = {
        "userAgent": "ExampleCorp Feedback Loop (V0.01)",
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-12-04T10:05:00.000Z",
        "timestamp": "2026-12-04T10:05:01.000Z",
        "feedbackId": "0100017f-complaint-feedback-000000",
    }
    return _wrap(
        family, "Complaint", "complaint", body, mail(ses_message_id, recipients, request_id)
    )


def delivery(
    ses_message_id: str,
    recipients: list[str],
    *,
    family: Family = "notification",
    request_id: str | None = None,
) -> dict[str, Any]:
    body = {
        "timestamp": "2026-12-04T10:00:01.000Z",
        "processingTimeMillis": 546,
        "recipients": recipients,
        "smtpResponse": "250 ok:  Message 64111812 accepted",
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "remoteMtaIp": "127.0.2.0",
    }
    return _wrap(family, "Delivery", "delivery", body, mail(ses_message_id, recipients, request_id))


def send(
    ses_message_id: str, recipients: list[str], request_id: str | None = None
) -> dict[str, Any]:
    return _wrap("event", "Send", "send", {}, mail(ses_message_id, recipients, request_id))


def reject(
    ses_message_id: str, recipients: list[str], request_id: str | None = None
) -> dict[str, Any]:
    body = {"reason": "Bad content"}
    return _wrap("event", "Reject", "reject", body, mail(ses_message_id, recipients, request_id))


def open_(
    ses_message_id: str, recipients: list[str], request_id: str | None = None
) -> dict[str, Any]:
    body = {
        "ipAddress": "192.0.2.1",
        "timestamp": "2026-12-04T11:00:00.000Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X)",
    }
    return _wrap("event", "Open", "open", body, mail(ses_message_id, recipients, request_id))


def click(
    ses_message_id: str,
    recipients: list[str],
    request_id: str | None = None,
    link: str = "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/",
) -> dict[str, Any]:
    body = {
        "ipAddress": "192.0.2.1",
        "link": link,
        "linkTags": {"samplekey0": ["samplevalue0"]},
        "timestamp": "2026-12-04T11:01:00.000Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    }
    return _wrap("event", "Click", "click", body, mail(ses_message_id, recipients, request_id))


def rendering_failure(ses_message_id: str, recipients: list[str]) -> dict[str, Any]:
    body = {
        "errorMessage": "Attribute 'attributeName' is not present in the rendering data.",
        "templateName": "MyTemplate",
    }
    return _wrap("event", "Rendering Failure", "failure", body, mail(ses_message_id, recipients))


def delivery_delay(ses_message_id: str, recipients: list[str]) -> dict[str, Any]:
    body = {
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2026-12-05T10:00:00.000Z",
        "delayedRecipients": [
            {
                "emailAddress": r,
                "status": "4.4.1",
                "diagnosticCode": "smtp; 421 4.4.1 Unable to connect",
            }
            for r in recipients
        ],
        "timestamp": "2026-12-04T10:30:00.000Z",
    }
    return _wrap("event", "DeliveryDelay", "deliveryDelay", body, mail(ses_message_id, recipients))


def subscription(
    ses_message_id: str, recipients: list[str], *, unsubscribe_all: bool = True
) -> dict[str, Any]:
    body = {
        "contactList": "SystemTestContactList",
        "timestamp": "2026-12-04T12:00:00.000Z",
        "source": "UnsubscribeHeader",
        "newTopicPreferences": {
            "unsubscribeAll": unsubscribe_all,
            "topicSubscriptionStatus": [
                {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}
            ],
        },
        "oldTopicPreferences": {
            "unsubscribeAll": False,
            "topicSubscriptionStatus": [
                {"topicName": "ExampleTopicName", "subscriptionStatus": "OptIn"}
            ],
        },
    }
    return _wrap("event", "Subscription", "subscription", body, mail(ses_message_id, recipients))
