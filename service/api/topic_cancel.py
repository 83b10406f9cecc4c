"""`POST /v1/topics/{topicId}/cancel`: cancel every unsent email of a topic."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import PathParameter

from service.api.auth import SECURITY, require_api_key
from service.api.context import request_context
from service.api.rejected import REJECTED_HANDLERS, UNAUTHORIZED, error_responses
from service.sending.cancel import cancel_topic
from service.sending.payloads import TopicCancelledResponse
from service.sending.validation import check_topic_id


@post(
    "/v1/topics/{topicId:str}/cancel",
    status_code=200,
    guards=[require_api_key],
    security=SECURITY,
    tags=["topics"],
    exception_handlers=REJECTED_HANDLERS,
    summary="Cancel a topic's unsent emails",
    description=(
        "Cancels, in one transaction, every email of the topic that is still scheduled or "
        "queued, and returns how many. Emails already claimed by a dispatcher or sent are "
        "left as they are."
    ),
    responses=error_responses((400, "The topic id is invalid."), UNAUTHORIZED),
)
async def cancel_topic_emails(
    request: Request[Any, Any, State],
    topic_id: Annotated[str, PathParameter(name="topicId", description="The topic to cancel.")],
) -> TopicCancelledResponse:
    checked = check_topic_id(topic_id, "topicId")
    async with request_context(request).pool.connection() as conn:
        cancelled = await cancel_topic(conn, checked)
    return TopicCancelledResponse(checked, cancelled)
