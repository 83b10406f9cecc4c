"""`GET /v1/topics/{topicId}` and `GET /v1/topics`: statistics per topic from topic_stats."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import Parameter, PathParameter

from projections.read import topic, topic_page
from service.api.auth import SECURITY, require_api_key
from service.api.context import request_context
from service.api.errors import ApiError
from service.api.topic_payloads import (
    TopicPage,
    TopicStatistics,
    topic_statistics,
    topic_summary,
)

MAX_PAGE_SIZE = 200


@get(
    "/v1/topics/{topicId:str}",
    guards=[require_api_key],
    security=SECURITY,
    tags=["statistics"],
    summary="One topic's statistics",
    description=(
        "The Go recipe's `request` and `result` parts, always with every key, plus every "
        "count of the topic_stats table and the delivery, bounce, complaint and unique open "
        "rates. Counts come from the projections and trail the event log by the projection "
        "lag, usually well under a second. 404 for a topic that no event has named."
    ),
)
async def get_topic(
    request: Request[Any, Any, State],
    topic_id: Annotated[str, PathParameter(name="topicId", description="The topic's id.")],
) -> TopicStatistics:
    async with request_context(request).pool.connection() as conn:
        row = await topic(conn, topic_id)
    if row is None:
        raise ApiError(404, f"Topic {topic_id!r} was not found.", "topicId")
    return topic_statistics(topic_id, row)


@get(
    "/v1/topics",
    guards=[require_api_key],
    security=SECURITY,
    tags=["statistics"],
    summary="Topics with their main counts, newest first",
)
async def list_topics(
    request: Request[Any, Any, State],
    limit: Annotated[
        str, Parameter(description=f"Topics per page, 1 to {MAX_PAGE_SIZE}.")
    ] = "50",
    cursor: Annotated[
        str | None, Parameter(description="`nextCursor` of the previous page.")
    ] = None,
) -> TopicPage:
    size = _page_size(limit)
    after = _decode_cursor(cursor) if cursor is not None else None
    async with request_context(request).pool.connection() as conn:
        rows = await topic_page(conn, size, after)
    next_cursor = None
    if len(rows) == size:
        next_cursor = _encode_cursor(rows[-1].first_activity_at, rows[-1].topic_id)
    return TopicPage([topic_summary(row) for row in rows], next_cursor)


def _page_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(
            400, f"limit={value!r} is invalid: expected a whole number from 1 to "
            f"{MAX_PAGE_SIZE}.", "limit"
        )
    return size


def _encode_cursor(first_activity_at: datetime, topic_id: str) -> str:
    raw = f"{first_activity_at.isoformat()}\n{topic_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, topic_id = raw.split("\n", 1)
        return datetime.fromisoformat(moment), topic_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            400, "cursor is invalid: pass the nextCursor of the previous page unchanged.",
            "cursor",
        ) from None
