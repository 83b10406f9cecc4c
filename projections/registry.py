"""Every projection by name, in the order they are run and listed."""

from __future__ import annotations

from projections.base import Projection
from projections.email_status import EmailStatusProjection
from projections.hourly_counts import HourlyCountsProjection
from projections.topic_stats import TopicStatsProjection

PROJECTIONS: dict[str, Projection] = {
    projection.name: projection
    for projection in (TopicStatsProjection(), HourlyCountsProjection(), EmailStatusProjection())
}


def select(names: tuple[str, ...]) -> list[Projection]:
    """Return the named projections (all of them for no names); raise KeyError naming the
    first unknown one."""
    if not names:
        return list(PROJECTIONS.values())
    for name in names:
        if name not in PROJECTIONS:
            raise KeyError(name)
    return [PROJECTIONS[name] for name in dict.fromkeys(names)]
