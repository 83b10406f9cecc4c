"""Response bodies of the statistics endpoints, and how topic_stats counts fill them."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.read import TopicRow, TopicSummaryRow


class RequestPart(msgspec.Struct, rename="camel"):
    """Emails by where they stand, with the Go recipe's names: `created` is not sent yet,
    `stopped` is cancelled or suppressed."""

    total: int
    created: int
    sent: int
    failed: int
    stopped: int


class ResultPart(msgspec.Struct):
    """Emails per SES feedback type, keyed by SES's event type names; `total` is their sum."""

    total: int
    statuses: dict[str, int]


class TopicCounts(msgspec.Struct, rename="camel"):
    """Every topic_stats count: emails per milestone, and event totals for engagement."""

    messages: int
    requested: int
    scheduled: int
    pending: int
    cancelled: int
    suppressed: int
    sent: int
    send_retries: int
    failed: int
    uncertain: int
    delivered: int
    bounced_hard: int
    bounced_soft: int
    complained: int
    rejected: int
    delayed: int
    rendering_failed: int
    opened_unique: int
    opened_total: int
    opened_machine: int
    clicked_unique: int
    clicked_total: int
    clicked_machine: int
    unsubscribed: int


class TopicRates(msgspec.Struct, rename="camel"):
    """Fractions from 0 to 1; null while their denominator is zero.

    delivery, bounce (hard bounces, as SES computes its bounce rate) and complaint are per
    email sent; uniqueOpen is human opens per email delivered.
    """

    delivery: float | None
    bounce: float | None
    complaint: float | None
    unique_open: float | None


class TopicStatistics(msgspec.Struct, rename="camel"):
    topic_id: str
    request: RequestPart
    result: ResultPart
    counts: TopicCounts
    rates: TopicRates
    first_activity_at: datetime
    last_activity_at: datetime


class TopicSummary(msgspec.Struct, rename="camel"):
    topic_id: str
    requested: int
    sent: int
    failed: int
    delivered: int
    bounced: int
    complained: int
    opened_unique: int
    clicked_unique: int
    first_activity_at: datetime
    last_activity_at: datetime


class TopicPage(msgspec.Struct, rename="camel"):
    topics: list[TopicSummary]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class HourCount(msgspec.Struct):
    hour: datetime
    count: int


class SentCounts(msgspec.Struct):
    """Emails sent in whole UTC hours: `since` is the start of the oldest hour counted and
    the series runs oldest first, the current hour last."""

    count: int
    hours: int
    since: datetime
    series: list[HourCount]


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def topic_statistics(topic_id: str, row: TopicRow) -> TopicStatistics:
    counts = TopicCounts(**row.counts)
    statuses = {
        "Delivery": counts.delivered,
        "Bounce": counts.bounced_hard + counts.bounced_soft,
        "Complaint": counts.complained,
        "Reject": counts.rejected,
        "DeliveryDelay": counts.delayed,
        "Rendering Failure": counts.rendering_failed,
        "Open": counts.opened_unique,
        "Click": counts.clicked_unique,
    }
    return TopicStatistics(
        topic_id=topic_id,
        request=RequestPart(
            total=counts.requested,
            created=counts.pending,
            sent=counts.sent,
            failed=counts.failed,
            stopped=counts.cancelled + counts.suppressed,
        ),
        result=ResultPart(total=sum(statuses.values()), statuses=statuses),
        counts=counts,
        rates=TopicRates(
            delivery=_rate(counts.delivered, counts.sent),
            bounce=_rate(counts.bounced_hard, counts.sent),
            complaint=_rate(counts.complained, counts.sent),
            unique_open=_rate(counts.opened_unique, counts.delivered),
        ),
        first_activity_at=row.first_activity_at,
        last_activity_at=row.last_activity_at,
    )


def topic_summary(row: TopicSummaryRow) -> TopicSummary:
    return TopicSummary(
        topic_id=row.topic_id,
        requested=row.requested,
        sent=row.sent,
        failed=row.failed,
        delivered=row.delivered,
        bounced=row.bounced_hard + row.bounced_soft,
        complained=row.complained,
        opened_unique=row.opened_unique,
        clicked_unique=row.clicked_unique,
        first_activity_at=row.first_activity_at,
        last_activity_at=row.last_activity_at,
    )
