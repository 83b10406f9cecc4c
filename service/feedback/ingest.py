"""Storing one verified SES notification: dedupe, link or hold, status, suppression.

Everything happens in the caller's transaction. Each recipient's event carries the dedupe
key `sns:<SNS MessageId>:<recipient>`, so SNS redeliveries are stored once, while two
notifications about one SES message (an open, then a click) are both stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.events.store import NewEvent, append
from service.events.types import (
    EmailClicked,
    EmailOpened,
    Event,
    FeedbackHeld,
    FeedbackUnrecognized,
    SuppressionReason,
)
from service.feedback.linking import (
    Connection,
    LinkedEmail,
    apply_feedback_status,
    build_event,
    find_email,
    find_emails,
    fold_status,
    hold_feedback,
    lock_ses_message_id,
)
from service.feedback.ses import FeedbackDraft, SesFeedback
from service.secret import Secret
from service.suppression import suppress
from service.tracking.record import mark_reported_engagements
from service.tracking.secret import stored_secret


@dataclass(frozen=True)
class IncomingFeedback:
    feedback: SesFeedback
    sns_message_id: str


@dataclass(frozen=True)
class IncomingUnrecognized:
    """A notification whose SES payload could not be mapped, to be kept as received."""

    sns_message_id: str
    topic_arn: str
    reason: str
    message: str


Incoming = IncomingFeedback | IncomingUnrecognized


@dataclass(frozen=True)
class StoreResult:
    outcomes: list[str]
    """Per recipient: stored (linked to its email), held, or duplicate; for an unrecognized
    notification, one entry: unrecognized or duplicate."""
    request_id: str | None

    @property
    def stored(self) -> int:
        return sum(outcome != "duplicate" for outcome in self.outcomes)

    @property
    def duplicates(self) -> int:
        return self.outcomes.count("duplicate")

    @property
    def held(self) -> bool:
        return "held" in self.outcomes


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


async def store_batch(
    conn: Connection, batch: Sequence[Incoming], tracking_secret: Secret | None = None
) -> list[StoreResult]:
    """Store notifications in one transaction; return one result per notification, in order.

    Feedback for emails whose SES message id is recorded, the usual case, is looked up,
    appended and given its status in a few statements for the whole batch. The rest (held,
    linked by tag, Send events, unrecognized) goes through `store_feedback` one by one.
    """
    results: dict[int, StoreResult] = {}
    candidates = [
        item.feedback.ses_message_id
        for item in batch
        if isinstance(item, IncomingFeedback) and item.feedback.drafts
    ]
    known = await find_emails(conn, candidates) if candidates else {}
    linked = [
        (index, item)
        for index, item in enumerate(batch)
        if isinstance(item, IncomingFeedback)
        and item.feedback.drafts
        and item.feedback.ses_message_id in known
    ]
    # The batch path goes first: the one-by-one path below re-reads any status it changes.
    engagement = _EngagementKey(tracking_secret)
    results.update(await _store_known(conn, known, linked, engagement))
    for index, item in enumerate(batch):
        if index in results:
            continue
        if isinstance(item, IncomingUnrecognized):
            stored = await store_unrecognized(
                conn, item.sns_message_id, item.topic_arn, item.reason, item.message
            )
            results[index] = StoreResult(["unrecognized" if stored else "duplicate"], None)
        else:
            results[index] = await store_feedback(
                conn, item.feedback, item.sns_message_id, engagement
            )
    return [results[index] for index in range(len(batch))]


async def _store_known(
    conn: Connection,
    known: dict[str, LinkedEmail],
    linked: Sequence[tuple[int, IncomingFeedback]],
    engagement: _EngagementKey,
) -> dict[int, StoreResult]:
    if not linked:
        return {}
    events: list[NewEvent] = []
    owners: list[tuple[int, FeedbackDraft, LinkedEmail]] = []
    for index, item in linked:
        email = known[item.feedback.ses_message_id]
        for draft in item.feedback.drafts:
            event = build_event(draft.event_type, draft.fields, email.request_id, email.topic_id)
            key = dedupe_key(item.sns_message_id, draft.recipient)
            events.append(NewEvent(email.request_id, event, draft.occurred_at, key))
            owners.append((index, draft, email))
    events = await engagement.mark(conn, events)
    positions = await append(conn, events)

    outcomes: dict[int, list[str]] = {index: [] for index, _ in linked}
    new_events: dict[str, list[Event]] = {}
    for (index, draft, email), new, position in zip(owners, events, positions, strict=True):
        outcomes[index].append("duplicate" if position is None else "stored")
        if position is not None:
            new_events.setdefault(email.request_id, []).append(new.event)
            await _suppress(conn, draft, email)
    await _store_statuses(conn, known, new_events)
    return {
        index: StoreResult(outcomes[index], known[item.feedback.ses_message_id].request_id)
        for index, item in linked
    }


async def _store_statuses(
    conn: Connection, known: dict[str, LinkedEmail], new_events: dict[str, list[Event]]
) -> None:
    changed: dict[str, str | None] = {}
    for email in known.values():
        status = fold_status(email.feedback_status, new_events.get(email.request_id, []))
        if status != email.feedback_status:
            changed[email.request_id] = status
    if changed:
        await conn.execute(
            """
            UPDATE emails
            SET feedback_status = changed.status, updated_at = now()
            FROM unnest(%s::uuid[], %s::text[]) AS changed (request_id, status)
            WHERE emails.request_id = changed.request_id
            """,
            (list(changed), list(changed.values())),
        )


async def store_feedback(
    conn: Connection,
    feedback: SesFeedback,
    sns_message_id: str,
    engagement: _EngagementKey | None = None,
) -> StoreResult:
    """Append the feedback's events to its email, or hold them; apply their effects."""
    email = await find_email(conn, feedback.ses_message_id, feedback.request_tag)
    if email is None and feedback.drafts:
        # Look again under the lock: the send may have been recorded since the first look.
        await lock_ses_message_id(conn, feedback.ses_message_id)
        email = await find_email(conn, feedback.ses_message_id, feedback.request_tag)
    request_id = email.request_id if email else None
    if not feedback.drafts:
        return StoreResult([], request_id)
    if email is None:
        positions = await _hold(conn, feedback, sns_message_id)
    else:
        positions = await _append_linked(
            conn, email, feedback, sns_message_id, engagement or _EngagementKey(None)
        )
    outcomes = []
    for draft, position in zip(feedback.drafts, positions, strict=True):
        if position is None:
            outcomes.append("duplicate")
            continue
        outcomes.append("stored" if email else "held")
        await _suppress(conn, draft, email)
    return StoreResult(outcomes, request_id)


async def _append_linked(
    conn: Connection,
    email: LinkedEmail,
    feedback: SesFeedback,
    sns_message_id: str,
    engagement: _EngagementKey,
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
    events = await engagement.mark(conn, events)
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


async def _suppress(conn: Connection, draft: FeedbackDraft, email: LinkedEmail | None) -> None:
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
    conn: Connection, sns_message_id: str, topic_arn: str, reason: str, message: str
) -> bool:
    """Keep a notification this version cannot map; return False when it was a duplicate."""
    event = FeedbackUnrecognized(
        sns_message_id=sns_message_id, topic_arn=topic_arn, reason=reason, message=message
    )
    key = f"sns:{sns_message_id}"
    positions = await append(conn, [NewEvent(key, event, None, key)])
    return positions[0] is not None


class _EngagementKey:
    """The tracking key, read once per batch and only when the batch has opens or clicks."""

    def __init__(self, secret: Secret | None) -> None:
        self._secret = secret
        self._key: bytes | None = None

    async def mark(self, conn: Connection, events: list[NewEvent]) -> list[NewEvent]:
        if not any(isinstance(new.event, EmailOpened | EmailClicked) for new in events):
            return events
        if self._key is None:
            self._key = (
                self._secret.reveal().encode()
                if self._secret is not None
                else (await stored_secret(conn)).encode()
            )
        return await mark_reported_engagements(conn, events, self._key)
