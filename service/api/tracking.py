"""Tracking endpoints that recipients' mail clients and browsers call: the open pixel, tracked
links and unsubscribe. None of them takes the API key: each is authorised by its signed token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Redirect
from psycopg import AsyncConnection

from service.api.context import AppContext, context_of, request_context
from service.api.nul import accept_any_parameters
from service.logging import get_logger
from service.metrics import TRACKING
from service.tracking import pages, tokens
from service.tracking.buffer import OpenBuffer
from service.tracking.personalize import UNSUBSCRIBE_PATH
from service.tracking.record import Hit, record_click, record_open, record_unsubscribe
from service.tracking.secret import tracking_key

log = get_logger(__name__)

_HTML = "text/html; charset=utf-8"
_NO_STORE = {"Cache-Control": "no-store"}
# The pixel is returned even when recording fails, so a longer wait would only delay it.
_POOL_TIMEOUT_SECONDS = 5.0

# Documented, so that the OpenAPI document allows the 404 page an invalid token gets.
_NOT_FOUND_PAGE = {
    404: ResponseSpec(
        str,
        media_type="text/html",
        description="The token is invalid: an HTML page, never a redirect.",
        generate_examples=False,
    )
}

AnyRequest = Request[object, object, State]
_Token = Annotated[str | None, QueryParameter(name="token", required=False)]


async def _key(request: AnyRequest) -> bytes:
    """Return the tracking key, read once per app: from the settings or the database."""
    state = request.app.state
    key = state.get("tracking_key")
    if isinstance(key, bytes):
        return key
    context = request_context(request)
    if context.settings.tracking_secret is not None:
        key = context.settings.tracking_secret.reveal().encode()
    else:
        async with context.pool.connection(timeout=_POOL_TIMEOUT_SECONDS) as conn:
            key = await tracking_key(conn, context.settings)
    state["tracking_key"] = key
    return key


@asynccontextmanager
async def _transaction(request: AnyRequest) -> AsyncIterator[AsyncConnection[tuple[object, ...]]]:
    context: AppContext = request_context(request)
    pool = context.pool
    async with pool.connection(timeout=_POOL_TIMEOUT_SECONDS) as conn, conn.transaction():
        yield conn


def _not_found() -> Response[str]:
    return Response(pages.not_found_page(), status_code=404, media_type=_HTML, headers=_NO_STORE)


class TrackingController(Controller):
    path = "/v1"
    tags = ("tracking",)

    @get(
        "/events/open",
        summary="Open-tracking pixel",
        description=(
            "Returns a 1x1 transparent GIF for any token, so no mail client shows a broken "
            "image, and records EmailOpened when the token is valid."
        ),
        media_type="image/gif",
        # The pixel returns a GIF whatever the token, even one with a NUL character.
        before_request=accept_any_parameters,
    )
    async def open_pixel(
        self,
        request: AnyRequest,
        token: Annotated[str | None, QueryParameter(name="requestId", required=False)] = None,
    ) -> Response[bytes]:
        await _record_open(request, token)
        return Response(pages.PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)

    @get(
        "/events/click",
        summary="Tracked link",
        description=(
            "Records EmailClicked and redirects (302) to the link signed into the token. "
            "An invalid token gets a 404 page, never a redirect."
        ),
        status_code=302,
        responses=_NOT_FOUND_PAGE,
    )
    async def click(self, request: AnyRequest, token: _Token = None) -> Response[str] | Redirect:
        try:
            verified = tokens.verify(await _key(request), "click", token)
        except tokens.InvalidToken:
            TRACKING.labels("click", "invalid_token").inc()
            return _not_found()
        assert verified.target is not None, "a verified click token always carries its target"
        try:
            async with _transaction(request) as conn:
                await record_click(
                    conn,
                    request_id=verified.request_id,
                    link=verified.target,
                    source="link",
                    user_agent=request.headers.get("user-agent"),
                )
        except Exception as error:
            # The recipient still reaches the link, and only the statistic is lost.
            TRACKING.labels("click", "failed").inc()
            log.error("click_record_failed", request_id=verified.request_id, error=str(error))
        else:
            TRACKING.labels("click", "recorded").inc()
            log.info("email_clicked", request_id=verified.request_id)
        return Redirect(verified.target, status_code=302, headers=_NO_STORE)

    @get(
        UNSUBSCRIBE_PATH.removeprefix("/v1"),
        summary="Unsubscribe confirmation page",
        description="Shows a button that POSTs; a GET alone never unsubscribes.",
        media_type=_HTML,
        responses=_NOT_FOUND_PAGE,
    )
    async def unsubscribe_page(self, request: AnyRequest, token: _Token = None) -> Response[str]:
        try:
            tokens.verify(await _key(request), "unsubscribe", token)
        except tokens.InvalidToken:
            TRACKING.labels("unsubscribe", "invalid_token").inc()
            return _not_found()
        # A relative reference keeps the page's own path, so a SERVER_HOST with a path
        # prefix (behind a reverse proxy) still posts to the right place.
        action = f"?token={token}"
        return Response(
            pages.confirm_unsubscribe_page(action), media_type=_HTML, headers=_NO_STORE
        )

    @post(
        UNSUBSCRIBE_PATH.removeprefix("/v1"),
        summary="Unsubscribe (RFC 8058 one-click, or the confirmation page's button)",
        description=(
            "Records EmailUnsubscribed and puts the recipient on the suppression list with "
            "reason unsubscribe. Repeating it changes nothing."
        ),
        media_type=_HTML,
        status_code=200,
        responses=_NOT_FOUND_PAGE,
    )
    async def unsubscribe(self, request: AnyRequest, token: _Token = None) -> Response[str]:
        try:
            verified = tokens.verify(await _key(request), "unsubscribe", token)
        except tokens.InvalidToken:
            TRACKING.labels("unsubscribe", "invalid_token").inc()
            return _not_found()
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        async with _transaction(request) as conn:
            event = await record_unsubscribe(
                conn,
                request_id=verified.request_id,
                source="one_click" if one_click else "link",
            )
        if event is None:
            TRACKING.labels("unsubscribe", "unknown_email").inc()
            log.warning("unsubscribe_unknown_email", request_id=verified.request_id)
            return _not_found()
        TRACKING.labels("unsubscribe", "recorded").inc()
        log.info("email_unsubscribed", request_id=verified.request_id, topic_id=event.topic_id)
        return Response(pages.unsubscribed_page(), media_type=_HTML, headers=_NO_STORE)


@asynccontextmanager
async def open_buffer_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run the pixel's open buffer for the app's lifetime; write what is left at shutdown."""
    buffer = OpenBuffer(context_of(app.state).pool)
    buffer.start()
    app.state["open_buffer"] = buffer
    try:
        yield
    finally:
        app.state.pop("open_buffer", None)
        await buffer.close()


async def _record_open(request: AnyRequest, token: str | None) -> None:
    """Record the open when the token is valid. Errors are logged and counted, not raised,
    because the image is returned either way."""
    try:
        verified = tokens.verify(await _key(request), "open", token)
    except tokens.InvalidToken:
        TRACKING.labels("open", "invalid_token").inc()
        return
    except Exception as error:
        TRACKING.labels("open", "failed").inc()
        log.error("tracking_key_unavailable", error=str(error))
        return
    user_agent = request.headers.get("user-agent")
    buffer = request.app.state.get("open_buffer")
    if isinstance(buffer, OpenBuffer):
        buffer.offer(Hit(verified.request_id, user_agent, datetime.now(UTC)))
        return
    # Without the buffer (an app built without its lifespan) each open is its own transaction.
    try:
        async with _transaction(request) as conn:
            await record_open(
                conn,
                request_id=verified.request_id,
                source="pixel",
                user_agent=user_agent,
            )
    except Exception as error:
        TRACKING.labels("open", "failed").inc()
        log.error("open_record_failed", request_id=verified.request_id, error=str(error))
        return
    TRACKING.labels("open", "recorded").inc()
