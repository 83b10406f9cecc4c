"""The feedback simulator of local mode: SNS's part, played over the real callback endpoint.

It follows the event log from where it last stopped, and for each EmailSent posts a signed
SNS Notification with the SES payload the mailbox simulator would produce to
`POST /v1/events/results` on 127.0.0.1. The callback verifies it like any SNS message, against
the local certificate placed in SNS_CERTS_DIR, so local feedback takes the production path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec
import psycopg
from psycopg import sql

from service.db.pool import Pool
from service.events.store import NOTIFY_CHANNEL, Checkpoint, StoredEvent, read_after
from service.events.types import EmailSent
from service.local.mailbox_simulator import SentEmail, feedback_payload
from service.logging import get_logger

log = get_logger(__name__)

BATCH_SIZE = 200
# NOTIFY wakes the simulator at once; this poll is the fallback if a notification is lost.
POLL_SECONDS = 2.0
POST_ATTEMPTS = 8
_MESSAGE_ID_NAMESPACE = uuid.UUID("5b0c8f1e-3d9a-4f6e-9a51-7c2d0e8b4a13")


class Signer(Protocol):
    def notification(
        self, topic_arn: str, message: str | dict[str, Any], *, message_id: str | None = None
    ) -> dict[str, str]: ...


@dataclass(frozen=True)
class SimulatorConfig:
    database_url: str
    callback_url: str
    topic_arn: str
    region: str
    sender: str
    checkpoint_path: Path
    basic_auth: tuple[str, str] | None = None


_HEAD = """
SELECT xact_id::text::bigint, position
FROM events
WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id DESC, position DESC
LIMIT 1
"""

_RECIPIENTS = """
SELECT request_id::text, recipient
FROM emails
WHERE request_id = ANY(%s::uuid[])
"""


class CheckpointFile:
    """The simulator's place in the log, kept in a file so that a restart resumes there."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Checkpoint | None:
        try:
            xact_id, position = self.path.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return Checkpoint(int(xact_id), int(position))

    def save(self, checkpoint: Checkpoint) -> None:
        # Written whole to a new file and renamed, so a crash never leaves half a checkpoint.
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(f"{checkpoint.xact_id} {checkpoint.position}\n")
        temporary.replace(self.path)


async def log_head(pool: Pool) -> Checkpoint:
    """Return the checkpoint after the last event that every reader can already see."""
    async with pool.connection() as conn:
        row = await (await conn.execute(_HEAD)).fetchone()
    return Checkpoint(int(row[0]), int(row[1])) if row else Checkpoint()


async def sent_emails(
    pool: Pool, events: Sequence[StoredEvent], sender: str
) -> dict[int, SentEmail]:
    """Return the SES-accepted emails among `events`, with their recipients, by position."""
    sent = [(stored, stored.event) for stored in events if isinstance(stored.event, EmailSent)]
    if not sent:
        return {}
    async with pool.connection() as conn:
        cursor = await conn.execute(_RECIPIENTS, ([event.request_id for _, event in sent],))
        recipients: Mapping[str, str] = {str(r[0]): str(r[1]) for r in await cursor.fetchall()}
    emails = {}
    for stored, event in sent:
        recipient = recipients.get(event.request_id)
        if recipient is None:
            log.warning(
                "feedback_simulation_skipped",
                request_id=event.request_id,
                reason="no emails row for the request",
            )
            continue
        emails[stored.position] = SentEmail(
            event.request_id, event.ses_message_id, recipient, sender, stored.occurred_at
        )
    return emails


def sns_message_id(email: SentEmail, event_type: str) -> str:
    """The same SNS MessageId each time one outcome is posted, so the callback drops repeats."""
    return str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"{email.ses_message_id}/{event_type}"))


class FeedbackSimulator:
    """Posts simulated SES feedback for every EmailSent to the callback, in log order."""

    def __init__(self, config: SimulatorConfig, pool: Pool, signer: Signer) -> None:
        self.config = config
        self.pool = pool
        self.signer = signer
        self.checkpoints = CheckpointFile(config.checkpoint_path)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until `stop` is set; the component entry point."""
        checkpoint = self.checkpoints.load() or await log_head(self.pool)
        self.checkpoints.save(checkpoint)
        log.info("feedback_simulator_started", callback=self.config.callback_url)
        async with httpx.AsyncClient(timeout=15, auth=self.config.basic_auth) as client:
            wake = asyncio.Event()
            listener = asyncio.create_task(self._listen(wake, stop))
            try:
                while not stop.is_set():
                    checkpoint = await self.catch_up(client, checkpoint, stop)
                    await _wait_any([wake, stop], POLL_SECONDS)
                    wake.clear()
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
        log.info("feedback_simulator_stopped")

    async def catch_up(
        self, client: httpx.AsyncClient, checkpoint: Checkpoint, stop: asyncio.Event
    ) -> Checkpoint:
        """Post feedback for every EmailSent after `checkpoint`; return the new checkpoint.

        The checkpoint advances past a send only once the callback has answered for it, so a
        send interrupted by `stop` is posted again after a restart.
        """
        while not stop.is_set():
            async with self.pool.connection() as conn:
                events = await read_after(conn, checkpoint, BATCH_SIZE)
            if not events:
                return checkpoint
            emails = await sent_emails(self.pool, events, self.config.sender)
            for stored in events:
                email = emails.get(stored.position)
                if email is not None and not await self.post_feedback(client, email, stop):
                    break
                checkpoint = stored.checkpoint
            self.checkpoints.save(checkpoint)
        return checkpoint

    async def post_feedback(
        self, client: httpx.AsyncClient, email: SentEmail, stop: asyncio.Event
    ) -> bool:
        """Post one signed notification, retrying while the API is starting or failing.

        Returns False only when `stop` interrupted it before the callback accepted it.
        """
        payload = feedback_payload(email, self.config.region)
        message_id = sns_message_id(email, payload["eventType"])
        message = self.signer.notification(self.config.topic_arn, payload, message_id=message_id)
        body = msgspec.json.encode(message)
        headers = {
            # SNS posts JSON under this content type, and the callback must accept it.
            "content-type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": message["MessageId"],
            "x-amz-sns-topic-arn": self.config.topic_arn,
        }
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                response = await client.post(
                    self.config.callback_url, content=body, headers=headers
                )
            except httpx.TransportError as error:
                outcome = f"connection failed: {error!r}"
            else:
                if response.status_code < 300:
                    log.info(
                        "feedback_simulated",
                        request_id=email.request_id,
                        ses_message_id=email.ses_message_id,
                        type=payload["eventType"],
                    )
                    return True
                if response.status_code < 500:
                    # SNS does not retry a 4xx either: the callback rejected the message.
                    log.error(
                        "feedback_simulation_rejected",
                        request_id=email.request_id,
                        status=response.status_code,
                        body=response.text[:500],
                    )
                    return True
                outcome = f"status {response.status_code}"
            if stop.is_set():
                log.warning("feedback_simulation_interrupted", request_id=email.request_id)
                return False
            if attempt == POST_ATTEMPTS:
                break
            log.warning(
                "feedback_simulation_retrying",
                request_id=email.request_id,
                attempt=attempt,
                error=outcome,
            )
            await _wait_any([stop], min(0.25 * 2**attempt, 10.0))
        log.error("feedback_simulation_failed", request_id=email.request_id, error=outcome)
        return True

    async def _listen(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """Set `wake` on each NOTIFY on the events channel, reconnecting after errors."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.config.database_url, autocommit=True
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
                    while not stop.is_set():
                        async for _ in conn.notifies(timeout=POLL_SECONDS):
                            wake.set()
            except psycopg.OperationalError as error:
                log.warning("feedback_simulator_listen_failed", error=str(error))
                await _wait_any([stop], POLL_SECONDS)


async def _wait_any(events: Sequence[asyncio.Event], seconds: float) -> None:
    """Wait until one of `events` is set or `seconds` have passed."""
    waiters = {asyncio.create_task(event.wait()) for event in events}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
