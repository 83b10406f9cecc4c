"""The feedback simulator's follower: from EmailSent events in PostgreSQL to posted notifications.

The callback here is a recording HTTP server on 127.0.0.1, so these tests check what the
simulator reads and posts. The acceptance tests check that the real callback accepts it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db.pool import Pool
from service.events.store import Checkpoint, NewEvent, StoredEvent, append, read_after
from service.events.types import EmailSent
from service.local.feedback_simulator import (
    CheckpointFile,
    FeedbackSimulator,
    SimulatorConfig,
    log_head,
    sent_emails,
)

TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:ses-sender-local-feedback"


class PlainSigner:
    """Wraps the message in an SNS envelope without a signature; the recorder does not verify."""

    def notification(
        self, topic_arn: str, message: str | dict[str, Any], *, message_id: str | None = None
    ) -> dict[str, str]:
        return {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
        }


class Recorder:
    """An HTTP server on 127.0.0.1 that records each POST and replies with queued statuses."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                recorder.bodies.append(json.loads(self.rfile.read(length)))
                recorder.headers.append({k.lower(): v for k, v in self.headers.items()})
                status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/events/results"

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(body["Message"]) for body in self.bodies]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def config(database_url: str, recorder: Recorder, tmp_path: Path) -> SimulatorConfig:
    return SimulatorConfig(
        database_url=database_url,
        callback_url=recorder.url,
        topic_arn=TOPIC_ARN,
        region="us-east-1",
        sender="sender@localhost.localdomain",
        checkpoint_path=tmp_path / "feedback-simulator.checkpoint",
    )


async def record_send(pool: Pool, recipient: str) -> tuple[str, str]:
    """Insert an emails row and its EmailSent event, as the dispatcher does."""
    request_id = str(uuid.uuid4())
    ses_message_id = f"local-{uuid.uuid4().hex}"
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO emails (request_id, message_id, message_position, topic_id, recipient,"
            " status, ses_message_id) VALUES (%s, %s, 0, 'news', %s, 'sent', %s)",
            (request_id, str(uuid.uuid4()), recipient, ses_message_id),
        )
        event = EmailSent(
            request_id=request_id, topic_id="news", ses_message_id=ses_message_id, attempt=1
        )
        await append(conn, [NewEvent(request_id, event)])
    return request_id, ses_message_id


async def wait_for_posts(recorder: Recorder, count: int) -> None:
    for _ in range(200):
        if len(recorder.bodies) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} posts, got {len(recorder.bodies)}")


async def test_posts_feedback_for_new_sends(
    pool: Pool, database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """Sends recorded after start get one notification each, with the simulator outcome."""
    await record_send(pool, "old@example.com")
    simulator = FeedbackSimulator(config(database_url, recorder, tmp_path), pool, PlainSigner())
    stop = asyncio.Event()
    task = asyncio.create_task(simulator.run(stop))
    try:
        await asyncio.sleep(0.3)
        bounce_id, bounce_message = await record_send(pool, "bounce@simulator.amazonses.com")
        success_id, _ = await record_send(pool, "success@simulator.amazonses.com")
        await wait_for_posts(recorder, 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    messages = recorder.messages()
    assert [m["eventType"] for m in messages] == ["Bounce", "Delivery"]
    assert messages[0]["mail"]["messageId"] == bounce_message
    assert messages[0]["mail"]["tags"]["request_id"] == [bounce_id]
    assert messages[1]["mail"]["tags"]["request_id"] == [success_id]
    assert all(body["TopicArn"] == TOPIC_ARN for body in recorder.bodies)
    assert recorder.headers[0]["content-type"] == "text/plain; charset=UTF-8"
    assert recorder.headers[0]["x-amz-sns-message-type"] == "Notification"


async def test_resumes_from_checkpoint_file(
    pool: Pool, database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """A restart posts what was sent while it was down, and nothing twice."""
    settings = config(database_url, recorder, tmp_path)
    CheckpointFile(settings.checkpoint_path).save(await log_head(pool))
    await record_send(pool, "complaint@simulator.amazonses.com")
    simulator = FeedbackSimulator(settings, pool, PlainSigner())

    async with httpx.AsyncClient() as client:
        stop = asyncio.Event()
        start = CheckpointFile(settings.checkpoint_path).load()
        assert start is not None
        after = await simulator.catch_up(client, start, stop)
        again = await simulator.catch_up(client, after, stop)

    assert [m["eventType"] for m in recorder.messages()] == ["Complaint"]
    assert again == after
    assert CheckpointFile(settings.checkpoint_path).load() == after


async def test_retries_transient_errors(
    pool: Pool, database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """A 503 from the callback is retried; a 400 is not."""
    simulator = FeedbackSimulator(config(database_url, recorder, tmp_path), pool, PlainSigner())
    start = await log_head(pool)
    await record_send(pool, "success@simulator.amazonses.com")
    await record_send(pool, "ooto@simulator.amazonses.com")
    recorder.statuses = [503, 200, 400]
    async with httpx.AsyncClient() as client:
        await simulator.catch_up(client, start, asyncio.Event())
    assert len(recorder.bodies) == 3
    assert [m["eventType"] for m in recorder.messages()] == ["Delivery", "Delivery", "Delivery"]


def test_checkpoint_file_round_trip(tmp_path: Path) -> None:
    """A saved checkpoint loads back; a missing or damaged file loads as none."""
    checkpoints = CheckpointFile(tmp_path / "checkpoint")
    assert checkpoints.load() is None
    checkpoints.save(Checkpoint(812, 4051))
    assert checkpoints.load() == Checkpoint(812, 4051)
    (tmp_path / "checkpoint").write_text("garbage\n")
    assert checkpoints.load() is None


async def test_stop_keeps_unposted_send(
    pool: Pool, database_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    """A send whose post is interrupted by stop stays after the checkpoint, with a stable id."""
    settings = config(database_url, recorder, tmp_path)
    simulator = FeedbackSimulator(settings, pool, PlainSigner())
    start = await log_head(pool)
    await record_send(pool, "success@simulator.amazonses.com")
    recorder.statuses = [503]
    stop = asyncio.Event()
    stop.set()
    async with httpx.AsyncClient() as client:
        # With stop already set the loop does not read at all: the checkpoint stays.
        assert await simulator.catch_up(client, start, stop) == start
        emails = await sent_emails(pool, await read_events(pool, start), settings.sender)
        (email,) = emails.values()
        assert not await simulator.post_feedback(client, email, stop)
        assert await simulator.post_feedback(client, email, asyncio.Event())
    first, second = recorder.bodies
    assert first["MessageId"] == second["MessageId"]


async def read_events(pool: Pool, after: Checkpoint) -> list[StoredEvent]:
    async with pool.connection() as conn:
        return await read_after(conn, after)
