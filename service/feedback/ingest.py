"""Storing one verified SES notification: dedupe, link or hold, status, suppression.

Everything happens in the caller's transaction. Each recipient's event carries the dedupe
key `sns:<SNS MessageId>:<recipient>`, so SNS redeliveries are stored once, while two
notifications about one SES message (an open, then a click) are both stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.events.store import NewEvent, append
from service.events.types import FeedbackHeld, FeedbackUnrecognized, SuppressionReason
from service.feedback.linking import (
    Connection,
    LinkedEmail,
    apply_feedback_status,
    build_event,
    find_email,
    hold_feedback,
    lock_ses_message_id,
)
from service.feedback.ses import FeedbackDraft, SesFeedback
from service.metrics import FEEDBACK
from service.suppression import suppress


@dataclass(frozen=True)
class StoreResult:
    stored: int
    duplicates: int
    held: bool
    request_id: str | None


def dedupe_key(sns_message_id: str, recipient: str) -> str:
    return f"sns:{sns_message_id}:{recipient}"


def suppression_reason(draft: FeedbackDraft) -> SuppressionReason | None:
    """Return why the draft's recipient must not be sent to again, or None."""
    if draft.event_type == "EmailBounced" and draft.fields.get("bounce_type") == "Permanent":
        return "bounce"
    if draft.event_type == "EmailComplained":
        return "complaint"
    if draft.event_type == "EmailUnsubscribed":
        return "unsubscribe"
    return None


async def store_feedback(
    conn: Connection, feedback: SesFeedback, sns_message_id: str
) -> StoreResult:
    """Append the feedback's events to its email, or hold them; apply their effects."""
    email = await find_email(conn, feedback.ses_message_id, feedback.request_tag)
    if email is None and feedback.drafts:
        # Look again under the lock: the send may have been recorded since the first look.
        await lock_ses_message_id(conn, feedback.ses_message_id)
        email = await find_email(conn, feedback.ses_message_id, feedback.request_tag)
    if not feedback.drafts:
        return StoreResult(0, 0, False, email.request_id if email else None)
    if email is None:
        positions = await _hold(conn, feedback, sns_message_id)
    else:
        positions = await _append_linked(conn, email, feedback, sns_message_id)
    stored = 0
    for draft, position in zip(feedback.drafts, positions, strict=True):
        outcome = "duplicate" if position is None else ("stored" if email else "held")
        FEEDBACK.labels(type=feedback.kind, outcome=outcome).inc()
        if position is None:
            continue
        stored += 1
        await _suppress(conn, draft, email, sns_message_id)
    return StoreResult(
        stored, len(positions) - stored, email is None, email.request_id if email else None
    )


async def _append_linked(
    conn: Connection, email: LinkedEmail, feedback: SesFeedback, sns_message_id: str
) -> list[int | None]:
    events = [
        NewEvent(
            email.request_id,
            build_event(draft.event_type, draft.fields, email.request_id, email.topic_id),
            draft.occurred_at,
            dedupe_key(sns_message_id, draft.recipient),
        )
        for draft in feedback.drafts
    ]
    positions = await append(conn, events)
    new = [e.event for e, p in zip(events, positions, strict=True) if p is not None]
    await apply_feedback_status(conn, email, new)
    return positions


async def _hold(conn: Connection, feedback: SesFeedback, sns_message_id: str) -> list[int | None]:
    held = [
        (
            FeedbackHeld(
                ses_message_id=feedback.ses_message_id,
                recipient=draft.recipient,
                event_type=draft.event_type,
                fields=draft.fields,
                sns_message_id=sns_message_id,
                ses_type=feedback.kind,
            ),
            draft.occurred_at,
            dedupe_key(sns_message_id, draft.recipient),
        )
        for draft in feedback.drafts
    ]
    return await hold_feedback(conn, feedback.ses_message_id, held)


async def _suppress(
    conn: Connection, draft: FeedbackDraft, email: LinkedEmail | None, sns_message_id: str
) -> None:
    # The address is known whether or not the send is, so suppression does not wait for linking.
    reason = suppression_reason(draft)
    if reason is None:
        return
    await suppress(
        conn,
        draft.recipient,
        reason,
        request_id=email.request_id if email else None,
        note=_note(draft),
        occurred_at=draft.occurred_at,
    )


def _note(draft: FeedbackDraft) -> str:
    fields: dict[str, Any] = draft.fields
    if draft.event_type == "EmailBounced":
        detail = fields.get("diagnostic_code") or fields.get("bounce_subtype") or ""
        return f"SES permanent bounce {detail}".strip()
    if draft.event_type == "EmailComplained":
        return f"SES complaint {fields.get('feedback_type') or ''}".strip()
    return "SES subscription: unsubscribed from all topics"


async def store_unrecognized(
    conn: Connection, sns_message_id: str, topic_arn: str, kind: str, reason: str, message: str
) -> bool:
    """Keep a notification this version cannot map; return False when it was a duplicate."""
    event = FeedbackUnrecognized(
        sns_message_id=sns_message_id, topic_arn=topic_arn, reason=reason, message=message
    )
    key = f"sns:{sns_message_id}"
    positions = await append(conn, [NewEvent(key, event, None, key)])
    stored = positions[0] is not None
    FEEDBACK.labels(type=kind, outcome="unrecognized" if stored else "duplicate").inc()
    return stored
