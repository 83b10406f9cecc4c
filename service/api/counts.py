"""`GET /v1/events/counts/sent`: emails sent per hour over the last hours, from hourly_counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import Parameter

from projections.fields import hour_of
from projections.read import sent_per_hour
from service.api.auth import SECURITY, require_api_key
from service.api.context import request_context
from service.api.errors import ApiError
from service.api.topic_payloads import HourCount, SentCounts

MAX_HOURS = 168


@get(
    "/v1/events/counts/sent",
    guards=[require_api_key],
    security=SECURITY,
    tags=["statistics"],
    summary="Emails sent per hour over the last hours",
    description=(
        "Counts whole UTC hours: the current one and the `hours - 1` before it. `since` is "
        "the start of the oldest hour, and `count` is the sum of the series."
    ),
)
async def sent_counts(
    request: Request[Any, Any, State],
    hours: Annotated[
        str, Parameter(description=f"Hours to count, 1 to {MAX_HOURS}.")
    ] = "24",
) -> SentCounts:
    span = _hours(hours)
    first_hour = hour_of(datetime.now(UTC)) - timedelta(hours=span - 1)
    async with request_context(request).pool.connection() as conn:
        counts = await sent_per_hour(conn, first_hour, span)
    series = [
        HourCount(first_hour + timedelta(hours=index), count) for index, count in enumerate(counts)
    ]
    return SentCounts(count=sum(counts), hours=span, since=first_hour, series=series)


def _hours(value: str) -> int:
    try:
        hours = int(value)
    except ValueError:
        hours = 0
    if not 1 <= hours <= MAX_HOURS:
        raise ApiError(
            400, f"hours={value!r} is invalid: expected a whole number from 1 to {MAX_HOURS}.",
            "hours",
        )
    return hours
