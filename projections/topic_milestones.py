"""The effect of one event on its topic's counts: milestones reached and counters added.

Milestones are bits of a per-email set, so an email is counted once per milestone however
many events report it (SES can report one delivery through two channels). Counters add one
per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


# Plain ints from here on: IntFlag operations took most of the projection's time.
MILESTONE_COLUMNS: dict[int, str] = {int(m): str(m.name).lower() for m in Milestone}

_REQUESTED = int(Milestone.REQUESTED)
# An email stops being pending once one of these happens to it.
_SETTLED = int(Milestone.SENT | Milestone.FAILED | Milestone.CANCELLED | Milestone.SUPPRESSED)

COUNTER_COLUMNS = (
    "messages",
    "send_retries",
    "opened_total",
    "opened_machine",
    "clicked_total",
    "clicked_machine",
)


@dataclass(frozen=True, slots=True)
class Effect:
    """The milestones an event reaches and the counters it adds."""

    milestones: int = 0
    counters: tuple[tuple[str, int], ...] = ()


NO_EFFECT = Effect()

_SIMPLE: dict[type[Event], Effect] = {
    cls: Effect(int(milestone))
    for cls, milestone in (
        (EmailRequested, Milestone.REQUESTED),
        (EmailScheduled, Milestone.SCHEDULED),
        (EmailCancelled, Milestone.CANCELLED),
        (EmailSuppressed, Milestone.SUPPRESSED),
        (EmailSent, Milestone.SENT),
        (EmailSendUncertain, Milestone.UNCERTAIN),
        (EmailDelivered, Milestone.DELIVERED),
        (EmailComplained, Milestone.COMPLAINED),
        (EmailRejected, Milestone.REJECTED),
        (EmailDeliveryDelayed, Milestone.DELAYED),
        (EmailRenderingFailed, Milestone.RENDERING_FAILED),
        (EmailUnsubscribed, Milestone.UNSUBSCRIBED),
    )
}
_FAILED = Effect(int(Milestone.FAILED))
_RETRIED = Effect(counters=(("send_retries", 1),))
_BOUNCED_HARD = Effect(int(Milestone.BOUNCED_HARD))
_BOUNCED_SOFT = Effect(int(Milestone.BOUNCED_SOFT))
# Proxies and prefetchers load every image: they show delivery, not a reader, so machine
# opens and clicks add to the totals but not to the unique counts.
_OPENED = Effect(int(Milestone.OPENED_UNIQUE), (("opened_total", 1),))
_OPENED_BY_MACHINE = Effect(counters=(("opened_total", 1), ("opened_machine", 1)))
_CLICKED = Effect(int(Milestone.CLICKED_UNIQUE), (("clicked_total", 1),))
_CLICKED_BY_MACHINE = Effect(counters=(("clicked_total", 1), ("clicked_machine", 1)))


def effect_of(event: Event | UnknownEvent) -> Effect:
    """Return what `event` adds to its email and topic. Duplicates add nothing."""
    simple = _SIMPLE.get(type(event))  # type: ignore[arg-type]
    if simple is not None:
        return simple
    if isinstance(event, EmailSendFailed):
        # Only the last failed attempt fails the email; earlier ones are retries.
        return _FAILED if event.permanent or event.retry_at is None else _RETRIED
    if isinstance(event, EmailBounced):
        return _BOUNCED_HARD if event.hard else _BOUNCED_SOFT
    if isinstance(event, EmailOpened):
        if event.duplicate:
            return NO_EFFECT
        return _OPENED_BY_MACHINE if event.machine else _OPENED
    if isinstance(event, EmailClicked):
        if event.duplicate:
            return NO_EFFECT
        return _CLICKED_BY_MACHINE if event.machine else _CLICKED
    return NO_EFFECT


def pending(milestones: int) -> int:
    """Return 1 for an email requested and not yet settled, else 0."""
    return 1 if milestones & _REQUESTED and not milestones & _SETTLED else 0


def new_milestone_columns(before: int, after: int) -> Iterator[str]:
    """Yield the columns of the milestones set in `after` but not in `before`."""
    bits = after & ~before
    while bits:
        lowest = bits & -bits
        yield MILESTONE_COLUMNS[lowest]
        bits ^= lowest
