"""`POST /v1/events/results`: the SNS callback for SES feedback.

It takes no API key, because SNS cannot send one; every message is verified instead. With
SNS_BASIC_AUTH set, HTTP Basic credentials are required first: SNS sends them only after a
401 with a `WWW-Authenticate: Basic` challenge, so the challenge is always sent.
"""

from __future__ import annotations

import base64
import binascii

import msgspec
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State

from service.api.context import request_context
from service.api.errors import ApiError
from service.feedback.handler import SnsCallback
from service.feedback.rejection import Rejected
from service.secret import Secret

CHALLENGE = {"WWW-Authenticate": 'Basic realm="ses-sender SNS callback", charset="UTF-8"'}


class CallbackReply(msgspec.Struct):
    """What the callback did: stored, held, duplicate, ignored, unrecognized, confirming..."""

    outcome: str
    stored: int = 0
    duplicates: int = 0


def _check_basic_auth(request: Request[object, object, State], expected: Secret) -> None:
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorized(
            "Credentials are required: this endpoint uses HTTP Basic authentication."
        )
    scheme, _, encoded = header.partition(" ")
    try:
        supplied = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        supplied = ""
    if scheme.lower() != "basic" or not expected.matches(supplied):
        raise _unauthorized("Invalid credentials for the SNS callback; check SNS_BASIC_AUTH.")


def _unauthorized(message: str) -> ApiError:
    error = ApiError(401, message, "authorization")
    error.headers = CHALLENGE
    return error


def _callback(request: Request[object, object, State]) -> SnsCallback:
    context = request_context(request)
    if context.sns_callback is None:
        context.sns_callback = SnsCallback(context.settings, context.pool)
    return context.sns_callback


@post(
    "/v1/events/results",
    summary="SNS callback for SES feedback (verified SNS messages only)",
    tags=["feedback"],
    status_code=200,
)
async def sns_results(request: Request[object, object, State]) -> Response[CallbackReply]:
    settings = request_context(request).settings
    if settings.sns_basic_auth is not None:
        _check_basic_auth(request, settings.sns_basic_auth)
    # The raw body, whatever the Content-Type: SNS posts JSON as text/plain.
    body = await request.body()
    try:
        result = await _callback(request).handle(body)
    except Rejected as rejected:
        raise ApiError(rejected.status, rejected.reason) from None
    background = BackgroundTask(result.after_response) if result.after_response else None
    reply = CallbackReply(result.outcome, result.stored, result.duplicates)
    return Response(reply, status_code=200, background=background)
