"""`/v1/messages`: submit emails, read one email's status and timeline, cancel one email."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import HeaderParameter, JSONBody, PathParameter

from service.api.auth import SECURITY, require_api_key
from service.api.context import request_context
from service.api.rejected import REJECTED_HANDLERS, UNAUTHORIZED, error_responses
from service.sending import idempotency
from service.sending.cancel import cancel_email, parse_request_id
from service.sending.idempotency import IdempotencyKey
from service.sending.payloads import (
    EmailCancelledResponse,
    EmailStatus,
    SubmitRequest,
    SubmitResponse,
)
from service.sending.status import email_status
from service.sending.submit import submit
from service.sending.validation import validate_submission

REPLAYED_HEADER = "Idempotent-Replayed"

RequestIdPath = Annotated[
    str, PathParameter(name="requestId", description="A requestId from POST /v1/messages.")
]


class MessagesController(Controller):
    path = "/v1/messages"
    guards = [require_api_key]  # noqa: RUF012 - Litestar reads these class attributes
    security = SECURITY
    tags = ["messages"]  # noqa: RUF012
    exception_handlers = REJECTED_HANDLERS

    @post(
        "/",
        status_code=202,
        summary="Submit messages",
        description=(
            "Accepts messages for sending, each to one or more recipients, now or at "
            "`scheduledAt` (RFC 3339 with an offset or Z; a past time means now). The whole "
            "request is validated before anything is stored, and then stored in one "
            "transaction. Duplicate addresses in one message are sent once. Each recipient "
            "gets a `requestId`. With an `Idempotency-Key` header, a retry with the same "
            "body returns the first response (header `Idempotent-Replayed: true`), and a "
            "different body with the same key is a 409."
        ),
        responses=error_responses(
            (400, "A field is invalid; `field` names it, such as messages[0].scheduledAt."),
            UNAUTHORIZED,
            (409, "The Idempotency-Key was already used with a different body."),
            (413, "Too many recipients or a body over MAX_CONTENT_BYTES."),
        ),
    )
    async def submit_messages(
        self,
        request: Request[Any, Any, State],
        data: JSONBody[SubmitRequest],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name=idempotency.HEADER,
                description="A client-chosen unique key (a UUID, say) that makes retries safe.",
            ),
        ] = None,
    ) -> Response[SubmitResponse]:
        context = request_context(request)
        messages = validate_submission(data, context.settings)
        key = None
        if idempotency_key is not None:
            key = IdempotencyKey(
                idempotency.check_key(idempotency_key),
                idempotency.body_hash(data),
                timedelta(hours=context.settings.idempotency_key_hours),
            )
        async with context.pool.connection() as conn:
            submitted = await submit(conn, messages, idempotency_key=key)
        headers = {REPLAYED_HEADER: "true"} if submitted.replayed else None
        return Response(submitted.response, status_code=submitted.status, headers=headers)

    @get(
        "/{requestId:str}",
        summary="Read one email",
        description="Returns the email's status and every event recorded for it, in order.",
        responses=error_responses(
            (400, "The request id is not a UUID."),
            UNAUTHORIZED,
            (404, "No email has this request id."),
        ),
    )
    async def read_email(
        self, request: Request[Any, Any, State], request_id: RequestIdPath
    ) -> EmailStatus:
        parsed = parse_request_id(request_id)
        async with request_context(request).pool.connection() as conn:
            return await email_status(conn, parsed)

    @delete(
        "/{requestId:str}",
        status_code=200,
        summary="Cancel one email",
        description=(
            "Cancels the email if it is still scheduled or queued. An email that a dispatcher "
            "has claimed, or that is sent or otherwise final, is a 409 naming its status."
        ),
        responses=error_responses(
            (400, "The request id is not a UUID."),
            UNAUTHORIZED,
            (404, "No email has this request id."),
            (409, "The email is no longer scheduled or queued."),
        ),
    )
    async def cancel_email(
        self, request: Request[Any, Any, State], request_id: RequestIdPath
    ) -> EmailCancelledResponse:
        parsed = parse_request_id(request_id)
        async with request_context(request).pool.connection() as conn:
            await cancel_email(conn, parsed)
        return EmailCancelledResponse(str(parsed), "cancelled")
