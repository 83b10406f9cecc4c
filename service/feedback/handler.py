"""The SNS callback without HTTP: verify a posted message, then act on its type.

Order matters: the envelope is parsed, the topic checked against SNS_TOPIC_ARNS, the
certificate URL checked, and the signature verified before anything else is done with the
message. Nothing slow runs inline: the certificate fetch has a short timeout and the
subscription confirmation GET is returned as a task to run after the response is sent.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from service.config import Settings
from service.db.pool import Pool
from service.feedback.batching import BatchWriter
from service.feedback.certificates import CertificateStore
from service.feedback.confirmation import CONFIRM_TIMEOUT_SECONDS, confirm_subscription
from service.feedback.envelope import SnsEnvelope, parse_envelope
from service.feedback.http import HttpGet, https_getter
from service.feedback.ingest import (
    Incoming,
    IncomingFeedback,
    IncomingUnrecognized,
    StoreResult,
    store_batch,
)
from service.feedback.rejection import Rejected
from service.feedback.ses import SesFeedback, Unrecognized, parse_ses_payload
from service.feedback.signature import hash_for, verify_signature
from service.feedback.topics import TopicAllowlist
from service.feedback.urls import check_signing_cert_url, is_sns_url
from service.logging import get_logger
from service.metrics import FEEDBACK

log = get_logger(__name__)

DATABASE_TIMEOUT_SECONDS = 5.0
"""How long a callback waits for a pooled connection, well inside SNS's 15-second limit."""

STORE_TIMEOUT_SECONDS = 10.0
"""How long a callback waits for its batch to commit before answering 503. SNS then retries,
and the dedupe key stores the notification once even if the batch committed after all."""


@dataclass(frozen=True)
class CallbackResult:
    """A handled message: the outcome, the counts, and work to run after the response."""

    outcome: str
    stored: int = 0
    duplicates: int = 0
    after_response: Callable[[], Awaitable[Any]] | None = None


class SnsCallback:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        *,
        certificates: CertificateStore | None = None,
        http_get: HttpGet | None = None,
        database_timeout: float = DATABASE_TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self._allowlist = TopicAllowlist(settings.sns_topic_arns)
        self._certificates = certificates or CertificateStore(settings.sns_certs_dir)
        self._http_get = http_get or https_getter(CONFIRM_TIMEOUT_SECONDS)
        self._writer: BatchWriter[Incoming, StoreResult] = BatchWriter(
            pool,
            functools.partial(store_batch, tracking_secret=settings.tracking_secret),
            timeout=database_timeout,
        )

    async def handle(self, body: bytes) -> CallbackResult:
        """Verify and act on one posted body; raise Rejected for a status other than 200."""
        envelope = parse_envelope(body)
        self._allowlist.check(envelope.topic_arn)
        await self._verify(envelope)
        if envelope.type == "SubscriptionConfirmation":
            return self._subscription_confirmation(envelope)
        if envelope.type == "UnsubscribeConfirmation":
            log.warning(
                "sns_unsubscribed",
                topic_arn=envelope.topic_arn,
                hint="this topic's feedback stops; subscribe the endpoint again to resume",
            )
            return CallbackResult("unsubscribe_noted")
        return await self._notification(envelope)

    async def _verify(self, envelope: SnsEnvelope) -> None:
        try:
            hash_for(envelope.signature_version)
            check_signing_cert_url(envelope.signing_cert_url)
            key = await self._certificates.public_key(envelope.signing_cert_url)
            verify_signature(envelope.fields, key)
        except Rejected as rejected:
            log.warning(
                "sns_message_rejected",
                sns_message_id=envelope.message_id,
                topic_arn=envelope.topic_arn,
                reason=rejected.reason,
            )
            raise

    def _subscription_confirmation(self, envelope: SnsEnvelope) -> CallbackResult:
        url = envelope.subscribe_url or ""
        if not is_sns_url(url):
            raise Rejected(
                403, f"SubscribeURL {url!r} is not an https URL on sns.<region>.amazonaws.com."
            )
        if not self._settings.sns_auto_confirm:
            log.warning(
                "sns_subscription_confirmation_pending",
                topic_arn=envelope.topic_arn,
                subscribe_url=url,
                hint="SNS_AUTO_CONFIRM is false: open subscribe_url to confirm the subscription",
            )
            return CallbackResult("confirmation_logged")
        http_get, topic_arn = self._http_get, envelope.topic_arn

        async def confirm() -> None:
            await confirm_subscription(http_get, topic_arn, url)

        return CallbackResult("confirming", after_response=confirm)

    async def _notification(self, envelope: SnsEnvelope) -> CallbackResult:
        try:
            payload = msgspec.json.decode(envelope.message)
        except msgspec.DecodeError:
            # SES posts a plain-text "Successfully validated SNS topic ..." when it is set up.
            log.info(
                "sns_text_message_ignored",
                sns_message_id=envelope.message_id,
                topic_arn=envelope.topic_arn,
                message=envelope.message[:200],
            )
            return CallbackResult("ignored")
        parsed = parse_ses_payload(payload, envelope.message_id)
        try:
            if isinstance(parsed, Unrecognized):
                return await self._unrecognized(envelope, parsed)
            return await self._store(envelope, parsed)
        except psycopg.OperationalError as error:
            # PoolTimeout is an OperationalError too. SNS retries a 5xx with backoff.
            log.warning(
                "feedback_database_unavailable",
                sns_message_id=envelope.message_id,
                error=str(error),
            )
            raise Rejected(503, "The database is unavailable; retry later.") from None

    async def _write(self, incoming: Incoming) -> StoreResult:
        try:
            return await asyncio.wait_for(self._writer.run(incoming), STORE_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("feedback_store_timed_out", sns_message_id=incoming.sns_message_id)
            raise Rejected(503, "Storing the notification timed out; retry later.") from None

    async def _store(self, envelope: SnsEnvelope, feedback: SesFeedback) -> CallbackResult:
        result = await self._write(IncomingFeedback(feedback, envelope.message_id))
        for outcome in result.outcomes or ["ignored"]:
            FEEDBACK.labels(type=feedback.kind, outcome=outcome).inc()
        log.info(
            "feedback_received",
            kind=feedback.kind,
            sns_message_id=envelope.message_id,
            ses_message_id=feedback.ses_message_id,
            request_id=result.request_id,
            stored=result.stored,
            duplicates=result.duplicates,
            held=result.held,
        )
        if not feedback.drafts:
            outcome = "ignored"
        elif result.stored == 0:
            outcome = "duplicate"
        else:
            outcome = "held" if result.held else "stored"
        return CallbackResult(outcome, result.stored, result.duplicates)

    async def _unrecognized(self, envelope: SnsEnvelope, parsed: Unrecognized) -> CallbackResult:
        incoming = IncomingUnrecognized(
            envelope.message_id, envelope.topic_arn, parsed.reason, envelope.message
        )
        result = await self._write(incoming)
        outcome = result.outcomes[0]
        FEEDBACK.labels(type=parsed.kind, outcome=outcome).inc()
        log.warning(
            "feedback_unrecognized",
            kind=parsed.kind,
            sns_message_id=envelope.message_id,
            reason=parsed.reason,
            duplicate=outcome == "duplicate",
        )
        return CallbackResult(outcome, result.stored, result.duplicates)
