"""Helpers for the SNS callback tests: a signed-message poster and email rows."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.config import Settings
from service.db.pool import Pool
from service.feedback.handler import SnsCallback
from service.feedback.http import HttpGet, HttpResult, https_getter
from service.feedback.local_signer import LocalSnsSigner, encode

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
FOREIGN_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-else"


class ConfirmationServer:
    """A server on 127.0.0.1 standing in for SNS's SubscribeURL host."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"<ConfirmSubscriptionResponse/>")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]

    def http_get(self) -> HttpGet:
        """An HTTP client that sends every GET to this server, keeping path and query."""
        real_get = https_getter(2.0)

        async def get(url: str) -> HttpResult:
            parts = urlsplit(url)
            return await real_get(f"http://127.0.0.1:{self.port}{parts.path}?{parts.query}")

        return get

    @contextmanager
    def running(self) -> Iterator[ConfirmationServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


@asynccontextmanager
async def callback_client(
    settings: Settings, pool: Pool, http_get: HttpGet | None = None, **options: Any
) -> AsyncIterator[AsyncTestClient[Any]]:
    callback = SnsCallback(settings, pool, http_get=http_get, **options)
    app = create_app(AppContext(settings, pool, sns_callback=callback))
    async with AsyncTestClient(app=app) as client:
        yield client


async def post_signed(
    client: AsyncTestClient[Any],
    message: dict[str, str],
    content_type: str = "text/plain; charset=UTF-8",
) -> Any:
    return await client.post(
        "/v1/events/results", content=encode(message), headers={"content-type": content_type}
    )


def notify(signer: LocalSnsSigner, payload: dict[str, Any], **options: Any) -> dict[str, str]:
    return signer.notification(TOPIC, payload, **options)


async def insert_email(
    pool: Pool,
    *,
    recipient: str = "alice@example.com",
    status: str = "sent",
    ses_message_id: str | None = None,
    topic_id: str = "newsletter",
) -> str:
    request_id = str(uuid.uuid4())
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,
                                status, ses_message_id, attempt)
            VALUES (%s, %s, 0, %s, %s, %s, %s, 1)
            """,
            (request_id, str(uuid.uuid4()), topic_id, recipient, status, ses_message_id),
        )
    return request_id


async def event_types(pool: Pool, stream: str | None = None) -> list[str]:
    async with pool.connection() as conn:
        if stream is None:
            cursor = await conn.execute("SELECT type FROM events ORDER BY position")
        else:
            cursor = await conn.execute(
                "SELECT type FROM events WHERE stream = %s ORDER BY position", (stream,)
            )
        return [row[0] for row in await cursor.fetchall()]


async def email_row(pool: Pool, request_id: str) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status, ses_message_id, feedback_status FROM emails WHERE request_id = %s",
            (request_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


async def suppressed(pool: Pool) -> list[tuple[str, str]]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT address, reason FROM suppressions ORDER BY address")
        return [(row[0], row[1]) for row in await cursor.fetchall()]
