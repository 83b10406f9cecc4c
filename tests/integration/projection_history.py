"""A seeded random history of email events, and the read-model counts computed from the
`events` table without the projection code, for comparing the two."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.db.pool import Pool
from service.events.store import NewEvent, append
from service.events.types import (
    EmailBounced,
    EmailCancelled,
    EmailClicked,
    EmailComplained,
    EmailDelivered,
    EmailDeliveryDelayed,
    EmailOpened,
    EmailRejected,
    EmailRenderingFailed,
    EmailRequested,
    EmailScheduled,
    EmailSendFailed,
    EmailSendUncertain,
    EmailSent,
    EmailSuppressed,
    EmailUnsubscribed,
    Event,
    MessageSubmitted,
    RecipientSuppressed,
)

START = datetime(2026, 11, 1, tzinfo=UTC)


class ReportedLater(Event, frozen=True, kw_only=True):
    """An event type this version does not know, as a newer version might append."""

    request_id: str
    note: str


@dataclass
class History:
    """Per-email event sequences, interleaved into transactions when appended."""

    rng: random.Random
    emails: list[list[NewEvent]] = field(default_factory=list)
    loose: list[NewEvent] = field(default_factory=list)


def _at(rng: random.Random, base: datetime, hours: float = 6.0) -> datetime:
    return base + timedelta(seconds=rng.uniform(0, hours * 3600))


def _email_events(rng: random.Random, request_id: str, message: str, topic: str) -> list[NewEvent]:
    t = _at(rng, START, 72)
    recipient = f"{request_id}@example.com"
    events: list[Event] = [
        EmailRequested(
            request_id=request_id, message_id=message, topic_id=topic, recipient=recipient,
            scheduled_at=t,
        )
    ]
    if rng.random() < 0.2:
        events.append(EmailScheduled(request_id=request_id, topic_id=topic, scheduled_at=t))
    outcome = rng.random()
    if outcome < 0.08:
        events.append(EmailCancelled(request_id=request_id, topic_id=topic))
    elif outcome < 0.14:
        events.append(
            EmailSuppressed(request_id=request_id, topic_id=topic, recipient=recipient,
                            reason="bounce")
        )
    elif outcome < 0.2:
        events.append(
            EmailSendFailed(request_id=request_id, topic_id=topic, attempt=1,
                            error_code="MessageRejected", error_message="bad", permanent=True)
        )
    elif outcome < 0.25:
        events.append(EmailSendUncertain(request_id=request_id, topic_id=topic, attempt=1,
                                         claimed_at=t))
    elif outcome < 0.3:
        pass  # still pending
    else:
        if rng.random() < 0.2:
            events.append(
                EmailSendFailed(request_id=request_id, topic_id=topic, attempt=1,
                                error_code="Throttling", error_message="slow", permanent=False,
                                retry_at=t)
            )
        ses_id = f"ses-{request_id}"
        events.append(EmailSent(request_id=request_id, topic_id=topic, ses_message_id=ses_id,
                                attempt=2))
        events.extend(_after_send(rng, request_id, topic, ses_id, recipient))
    return [
        NewEvent(request_id, event, occurred_at=_at(rng, t, 3)) for event in events
    ]


def _after_send(
    rng: random.Random, request_id: str, topic: str, ses_id: str, recipient: str
) -> list[Event]:
    link: dict[str, Any] = {"ses_message_id": ses_id, "recipient": recipient,
                            "request_id": request_id,
                            "topic_id": topic if rng.random() < 0.9 else None}
    feedback: list[Event] = []
    roll = rng.random()
    if roll < 0.6:
        feedback.append(EmailDelivered(**link))
        if rng.random() < 0.3:
            feedback.append(EmailDelivered(**link, source="event_publishing"))
    if roll > 0.5:
        bounce_type = rng.choice(["Permanent", "Transient", "Undetermined"])
        feedback.append(EmailBounced(**link, bounce_type=bounce_type))
    if rng.random() < 0.05:
        feedback.append(EmailComplained(**link))
    for cls, chance in ((EmailRejected, 0.03), (EmailDeliveryDelayed, 0.1),
                        (EmailRenderingFailed, 0.02)):
        if rng.random() < chance:
            feedback.append(cls(**link))
    rng.shuffle(feedback)  # SES reports arrive in any order
    engagement: list[Event] = []
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        engagement.append(
            EmailOpened(request_id=request_id, topic_id=link["topic_id"],
                        machine=rng.random() < 0.3, duplicate=rng.random() < 0.15)
        )
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        engagement.append(
            EmailClicked(request_id=request_id, topic_id=None, link="https://example.com/a",
                         machine=rng.random() < 0.2, duplicate=rng.random() < 0.1)
        )
    if rng.random() < 0.04:
        engagement.append(EmailUnsubscribed(request_id=request_id, recipient=recipient))
    if rng.random() < 0.02:
        engagement.append(ReportedLater(request_id=request_id, note="new"))
    return feedback + engagement


def _loose_events(rng: random.Random, count: int) -> list[NewEvent]:
    """Events about no known email: unlinked feedback, strays, suppression list changes."""
    loose: list[NewEvent] = []
    for index in range(count):
        moment = _at(rng, START, 72)
        kind = rng.random()
        event: Event
        if kind < 0.4:
            event = EmailDelivered(ses_message_id=f"unknown-{index}", recipient="x@example.com")
        elif kind < 0.6:
            event = EmailBounced(ses_message_id=f"unknown-{index}", recipient="x@example.com",
                                 bounce_type="Permanent")
        elif kind < 0.8:
            event = EmailOpened(request_id=f"stray-{index}")
        else:
            event = RecipientSuppressed(address=f"s{index}@example.com", reason="manual")
        loose.append(NewEvent(f"loose-{index}", event, occurred_at=moment))
    return loose


def make_history(seed: int, emails: int = 300, topics: int = 6) -> History:
    rng = random.Random(seed)
    history = History(rng)
    for index in range(emails):
        topic = f"topic-{rng.randrange(topics)}"
        message = f"m-{index // 4}"
        history.emails.append(_email_events(rng, f"req-{seed}-{index}", message, topic))
        if index % 4 == 0:
            submitted = MessageSubmitted(message_id=message, topic_id=topic, subject="s",
                                         html="<p>h</p>")
            history.emails[-1].insert(0, NewEvent(message, submitted, occurred_at=START))
    history.loose = _loose_events(rng, emails // 10)
    return history


def interleave(history: History) -> list[NewEvent]:
    """Merge the emails' sequences randomly, keeping each email's own order."""
    queues = [list(events) for events in history.emails] + [[e] for e in history.loose]
    merged: list[NewEvent] = []
    rng = history.rng
    while queues:
        index = rng.randrange(len(queues))
        merged.append(queues[index].pop(0))
        if not queues[index]:
            queues.pop(index)
    return merged


async def append_all(pool: Pool, events: list[NewEvent], rng: random.Random) -> None:
    """Append in transactions of random size."""
    index = 0
    while index < len(events):
        size = rng.randint(1, 40)
        async with pool.connection() as conn, conn.transaction():
            await append(conn, events[index : index + size])
        index += size


# --- Expected counts, from the raw rows of `events` --------------------------------------

RawRows = list[tuple[int, str, dict[str, Any], datetime]]


async def raw_events(pool: Pool) -> RawRows:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT position, type, data, occurred_at FROM events ORDER BY xact_id, position"
        )
        return [(r[0], r[1], r[2], r[3]) for r in await cursor.fetchall()]  # type: ignore[misc]


def expected_topic_stats(rows: RawRows) -> dict[str, dict[str, Any]]:
    topic_of = {d["request_id"]: d["topic_id"] for _, t, d, _ in rows if t == "EmailRequested"}
    distinct: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    moments: dict[str, list[datetime]] = defaultdict(list)
    simple = {
        "EmailRequested": "requested", "EmailScheduled": "scheduled",
        "EmailCancelled": "cancelled", "EmailSuppressed": "suppressed", "EmailSent": "sent",
        "EmailSendUncertain": "uncertain", "EmailDelivered": "delivered",
        "EmailComplained": "complained", "EmailRejected": "rejected",
        "EmailDeliveryDelayed": "delayed", "EmailRenderingFailed": "rendering_failed",
        "EmailUnsubscribed": "unsubscribed",
    }
    for _, kind, data, moment in rows:
        if kind == "MessageSubmitted":
            totals[data["topic_id"]]["messages"] += 1
            moments[data["topic_id"]].append(moment)
            continue
        request = data.get("request_id")
        topic = topic_of.get(request) if request else None
        if topic is None or data.get("duplicate"):
            continue
        column = simple.get(kind)
        if kind == "EmailSendFailed":
            final = data["permanent"] or data.get("retry_at") is None
            column = "failed" if final else None
            if not final:
                totals[topic]["send_retries"] += 1
        elif kind == "EmailBounced":
            column = "bounced_hard" if data["bounce_type"] == "Permanent" else "bounced_soft"
        elif kind in ("EmailOpened", "EmailClicked"):
            prefix = "opened" if kind == "EmailOpened" else "clicked"
            totals[topic][f"{prefix}_total"] += 1
            if data.get("machine"):
                totals[topic][f"{prefix}_machine"] += 1
            else:
                distinct[topic][f"{prefix}_unique"].add(request)
        elif column is None:
            continue
        if column is not None:
            distinct[topic][column].add(request)
        moments[topic].append(moment)
    result: dict[str, dict[str, Any]] = {}
    for topic in moments:
        counts: dict[str, Any] = dict(totals[topic])
        counts.update({column: len(ids) for column, ids in distinct[topic].items()})
        settled = set().union(*(distinct[topic][c] for c in ("sent", "failed", "cancelled",
                                                             "suppressed")))
        counts["pending"] = len(distinct[topic]["requested"] - settled)
        counts["first_activity_at"] = min(moments[topic])
        counts["last_activity_at"] = max(moments[topic])
        result[topic] = counts
    return result


_RANK = {
    "EmailRequested": (0, "requested"), "EmailScheduled": (0, "scheduled"),
    "EmailSendUncertain": (0, "uncertain"), "EmailCancelled": (1, "cancelled"),
    "EmailSuppressed": (1, "suppressed"), "EmailSent": (2, "sent"),
    "EmailDeliveryDelayed": (3, "delayed"), "EmailDelivered": (4, "delivered"),
    "EmailBounced": (5, "bounced"), "EmailRejected": (5, "rejected"),
    "EmailRenderingFailed": (5, "rendering_failed"), "EmailComplained": (6, "complained"),
}


def expected_statuses(rows: RawRows) -> dict[str, str]:
    """Each email's status: the latest of its highest-ranked status events."""
    best: dict[str, tuple[int, int, str]] = {}
    for order, (_, kind, data, _) in enumerate(rows):
        request = data.get("request_id")
        if not request:
            continue
        if kind == "EmailSendFailed":
            final = data["permanent"] or data.get("retry_at") is None
            rank, status = (1, "failed") if final else (0, "retrying")
        elif kind in _RANK:
            rank, status = _RANK[kind]
        else:
            continue
        if request not in best or (rank, order) >= best[request][:2]:
            best[request] = (rank, order, status)
    return {request: entry[2] for request, entry in best.items()}


def expected_unlinked(rows: RawRows) -> dict[str, int]:
    requested = {d["request_id"] for _, t, d, _ in rows if t == "EmailRequested"}
    unlinked: Counter[str] = Counter()
    for _, kind, data, _ in rows:
        if kind in ("RecipientSuppressed", "MessageSubmitted") or data.get("duplicate"):
            continue
        request = data.get("request_id")
        if request is None or request not in requested:
            unlinked[kind] += 1
    return dict(unlinked)


EXPECTED_HOURLY = """
SELECT date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
       e.type,
       coalesce(e.data->>'topic_id', r.data->>'topic_id') AS topic,
       count(*)
FROM events e
LEFT JOIN events r ON r.type = 'EmailRequested' AND r.stream = e.data->>'request_id'
WHERE coalesce((e.data->>'duplicate')::boolean, false) = false
GROUP BY 1, 2, 3
"""
