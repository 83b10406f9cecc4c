"""The JSON bodies of the submission and cancellation endpoints, as msgspec Structs.

The request body is the Go aws-ses-sender recipe's (`messages[].topicId`, `emails`,
`subject`, `content`, `scheduledAt`) plus optional fields. Unknown fields are rejected, so
a misspelt `scheduled_at` is a 400 instead of an email sent now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec


def _doc(description: str, example: object = None) -> msgspec.Meta:
    """Return field metadata that Litestar shows in the OpenAPI schema."""
    if example is None:
        return msgspec.Meta(description=description)
    return msgspec.Meta(description=description, examples=[example])


class MessageIn(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """One message of a submission: the same subject and content for every address in `emails`."""

    topic_id: Annotated[str, _doc("Groups emails for statistics and topic cancel.", "news-2026")]
    emails: Annotated[list[str], _doc("Recipients; an address given twice is sent once.")]
    subject: str
    content: Annotated[str, _doc("The HTML body.")]
    scheduled_at: Annotated[
        str | None,
        _doc(
            "RFC 3339 time with an offset or Z. Absent, null, empty or past means now.",
            "2026-12-25T10:00:00+09:00",
        ),
    ] = None
    text: Annotated[str | None, _doc("An optional plain-text body sent with the HTML one.")] = None
    reply_to: Annotated[list[str], _doc("Reply-To addresses.")] = []
    tags: Annotated[dict[str, str], _doc("SES tags; names of ASCII letters, digits, _ or -.")] = {}
    track_clicks: Annotated[bool, _doc("Rewrite links to tracked redirects.")] = False
    unsubscribe: Annotated[bool, _doc("Add List-Unsubscribe headers and a link.")] = False


class SubmitRequest(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[MessageIn]


EmailState = Literal["queued", "scheduled"]


class AcceptedEmail(msgspec.Struct, rename="camel"):
    """The request id assigned to one recipient."""

    email: Annotated[str, _doc("The address as it is sent to: domain lower-cased, punycode.")]
    request_id: str


class AcceptedMessage(msgspec.Struct, rename="camel"):
    message_id: str
    topic_id: str
    status: EmailState
    due_at: Annotated[
        datetime, _doc("When its emails become due: scheduledAt, or now if that is earlier.")
    ]
    requests: Annotated[list[AcceptedEmail], _doc("One request id per distinct recipient.")]
    duplicates_removed: Annotated[
        int, _doc("Repeated addresses in `emails` (compared after normalisation), not sent again.")
    ]


class SubmitResponse(msgspec.Struct, rename="camel"):
    """The 202 body; `count` is the number of emails accepted (one per distinct recipient)."""

    count: Annotated[int, _doc("Emails accepted: one per distinct recipient of each message.")]
    messages: list[AcceptedMessage]
    elapsed: Annotated[str, _doc("Time spent handling the request, such as '3.2ms'.")]


class TimelineEvent(msgspec.Struct, rename="camel"):
    position: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class EmailStatus(msgspec.Struct, rename="camel"):
    """One email: its status in the due queue and every event recorded for it."""

    request_id: str
    message_id: str
    topic_id: str
    recipient: str
    status: str
    due_at: datetime | None
    attempt: int
    ses_message_id: str | None
    created_at: datetime
    updated_at: datetime
    events: list[TimelineEvent]


class EmailCancelledResponse(msgspec.Struct, rename="camel"):
    request_id: str
    status: Literal["cancelled"]


class TopicCancelledResponse(msgspec.Struct, rename="camel"):
    topic_id: str
    cancelled: Annotated[int, _doc("How many scheduled or queued emails were cancelled.")]
