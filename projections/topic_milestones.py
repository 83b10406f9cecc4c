"""The effect of one event on its topic's counts: milestones reached and counters added.

Milestones are bits of a per-email set, so an email is counted once per milestone however
many events report it (SES can report one delivery through two channels). Counters add one
per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

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
    UnknownEvent,
)


class Milestone(IntFlag):
    """Bits stored in topic_stats_emails.milestones; each names a topic_stats column."""

    REQUESTED = 1 << 0
    SCHEDULED = 1 << 1
    CANCELLED = 1 << 2
    SUPPRESSED = 1 << 3
    SENT = 1 << 4
    FAILED = 1 << 5
    UNCERTAIN = 1 << 6
    DELIVERED = 1 << 7
    BOUNCED_HARD = 1 << 8
    BOUNCED_SOFT = 1 << 9
    COMPLAINED = 1 << 10
    REJECTED = 1 << 11
    DELAYED = 1 << 12
    RENDERING_FAILED = 1 << 13
    OPENED_UNIQUE = 1 << 14
    CLICKED_UNIQUE = 1 << 15
    UNSUBSCRIBED = 1 << 16


MILESTONE_COLUMNS: dict[Milestone, str] = {m: str(m.name).lower() for m in Milestone}

# An email stops being pending once one of these happens to it.
SETTLED = Milestone.SENT | Milestone.FAILED | Milestone.CANCELLED | Milestone.SUPPRESSED

COUNTER_COLUMNS = (
    "messages",
    "send_retries",
    "opened_total",
    "opened_machine",
    "clicked_total",
    "clicked_machine",
)

_SIMPLE: dict[type[Event], Milestone] = {
    EmailRequested: Milestone.REQUESTED,
    EmailScheduled: Milestone.SCHEDULED,
    EmailCancelled: Milestone.CANCELLED,
    EmailSuppressed: Milestone.SUPPRESSED,
    EmailSent: Milestone.SENT,
    EmailSendUncertain: Milestone.UNCERTAIN,
    EmailDelivered: Milestone.DELIVERED,
    EmailComplained: Milestone.COMPLAINED,
    EmailRejected: Milestone.REJECTED,
    EmailDeliveryDelayed: Milestone.DELAYED,
    EmailRenderingFailed: Milestone.RENDERING_FAILED,
    EmailUnsubscribed: Milestone.UNSUBSCRIBED,
}


@dataclass
class Effect:
    """The milestones an event reaches and the counters it adds."""

    milestones: Milestone = field(default_factory=lambda: Milestone(0))
    counters: dict[str, int] = field(default_factory=dict)


def effect_of(event: Event | UnknownEvent) -> Effect:
    """Return what `event` adds to its email and topic. Duplicates add nothing."""
    simple = _SIMPLE.get(type(event))  # type: ignore[arg-type]
    if simple is not None:
        return Effect(simple)
    if isinstance(event, EmailSendFailed):
        # Only the last failed attempt fails the email; earlier ones are retries.
        if event.permanent or event.retry_at is None:
            return Effect(Milestone.FAILED)
        return Effect(counters={"send_retries": 1})
    if isinstance(event, EmailBounced):
        return Effect(Milestone.BOUNCED_HARD if event.hard else Milestone.BOUNCED_SOFT)
    if isinstance(event, EmailOpened):
        return _engagement(event.duplicate, event.machine, "opened", Milestone.OPENED_UNIQUE)
    if isinstance(event, EmailClicked):
        return _engagement(event.duplicate, event.machine, "clicked", Milestone.CLICKED_UNIQUE)
    return Effect()


def _engagement(duplicate: bool, machine: bool, prefix: str, unique: Milestone) -> Effect:
    if duplicate:
        return Effect()
    if machine:
        # Proxies and prefetchers load every image: they show delivery, not a reader.
        return Effect(counters={f"{prefix}_total": 1, f"{prefix}_machine": 1})
    return Effect(unique, {f"{prefix}_total": 1})


def pending(milestones: int) -> int:
    """Return 1 for an email requested and not yet settled, else 0."""
    return int(bool(milestones & Milestone.REQUESTED) and not milestones & SETTLED)
