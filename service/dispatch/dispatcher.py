"""The dispatcher: claims due emails, has them sent at their rate slots, records the results.

Any number of dispatchers may run against one database. Each claims a batch with
FOR UPDATE SKIP LOCKED and hands each email to its sending threads (service.dispatch.workers)
sharing one SesSender; a thread signs the request, takes the next free rate slot
(service.dispatch.slots, reserved from the shared limiter) and sends. Results are recorded in
batches. A claim is committed before SES is called and the result right after. The
dispatcher renews the leases of the claims it still works on, so an email's lease expires
(and the email becomes uncertain) only when its dispatcher died or lost the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from service.config import Settings
from service.db.pool import Pool
from service.dispatch import limiter, queue, uncertain
from service.dispatch.account import AccountLimits, SendLimits
from service.dispatch.listener import listen
from service.dispatch.messages import MessageCache
from service.dispatch.outcomes import SendFailure, classify
from service.dispatch.personalize import Personalizer, build_email
from service.dispatch.queue import ClaimedEmail
from service.dispatch.results import Failed, Released, Result, Sent, Suppressed, record
from service.dispatch.sender import SesSender
from service.dispatch.sending import Accepted, Attempt, Lease, Unsent, result_of, send_at_slot
from service.dispatch.ses import SESV2Client, create_client, create_sender, failure_of
from service.dispatch.slots import SlotPool
from service.dispatch.workers import Workers
from service.errors import ConfigError
from service.logging import get_logger
from service.metrics import SENDS
from service.sending.submit import DUE_CHANNEL

log = get_logger(__name__)

POLL_SECONDS = 2.0
"""Fallback wake-up when no notification arrives."""
MAINTENANCE_SECONDS = 1.0
BATCH_SECONDS = 0.25
"""The most sends a dispatcher claims ahead, in seconds at the current rate."""
HOLD_SECONDS = 60.0
"""How long SES quota or account errors stop every dispatcher before the next try."""
RECORD_BATCH = 1000
RECORD_LINGER_SECONDS = 0.01
"""How long a small batch of results waits for more before it is written."""
SHUTDOWN_RECORD_SECONDS = 60.0
"""How long a stopping dispatcher keeps trying to record results while the database is away."""
RENEW_FRACTION = 0.5
"""A claim's lease is renewed once less than this share of it is left."""

Outcome = Accepted | SendFailure | Unsent


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        url: str,
        client: SESV2Client,
        sender: SesSender,
        personalizers: Sequence[Personalizer] = (),
    ) -> None:
        if settings.email_sender is None:
            raise ConfigError("EMAIL_SENDER is missing: set it to a sender address verified in SES")
        self.id = queue.new_dispatcher_id()
        self._settings = settings
        self._from = settings.email_sender
        self._pool = pool
        self._url = url
        self._sender = sender
        self._personalizers = tuple(personalizers)
        self._account = AccountLimits(settings, client)
        self._capacity = settings.dispatch_concurrency
        self._held_max = 2 * self._capacity
        self._free = self._held_max
        """How many more emails this dispatcher may claim now."""
        self._wake = asyncio.Event()
        """Set by a notification, by finished sends freeing room, and by stop."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._results: list[Result | Released] = []
        self._results_ready = asyncio.Event()
        self._throttled = False
        self._held_until = 0.0
        self._limiter = limiter.BlockingLimiter(url)
        self._slots = SlotPool(self._reserve, self._rate)
        self._leases: dict[str, Lease] = {}
        """Claims this dispatcher works on, until their result is recorded or released."""
        self._reacting: set[asyncio.Task[None]] = set()
        self._messages = MessageCache()
        self._workers: Workers[Attempt, Outcome] = Workers(
            self._capacity, self._send, self._finished, self._crashed
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set, then finish and record every send in flight."""
        log.info("dispatcher_started", dispatcher=self.id)
        halt = asyncio.Event()
        helpers = [
            asyncio.create_task(listen(self._url, DUE_CHANNEL, self._wake, halt)),
            asyncio.create_task(self._maintain(halt)),
            asyncio.create_task(self._forward(stop)),
        ]
        recorder = asyncio.create_task(self._record_results(halt))
        self._workers.start()
        try:
            await self._dispatch(stop)
        finally:
            await self._idle.wait()
            await asyncio.to_thread(self._workers.stop)
            await self._refund(everything=True)
            self._limiter.close()
            halt.set()
            self._results_ready.set()
            await recorder
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._sender.close()
            log.info("dispatcher_stopped", dispatcher=self.id)

    async def _forward(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    # --- claiming --------------------------------------------------------------------

    async def _dispatch(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                delay = await self._dispatch_once()
                backoff = 0.5
            except psycopg.OperationalError as error:
                log.warning("dispatcher_database_error", error=str(error), retry_in=backoff)
                delay, backoff = backoff, min(backoff * 2, 10.0)
            if delay > 0 and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _batch(self, rate: float) -> tuple[int, int]:
        """Return (how many emails to claim now, the fewest worth a claim)."""
        # Claim no more than a short stretch of sends at the current rate, so that claimed
        # emails do not wait long for a slot and other dispatchers get their share.
        # Claim at least a quarter of that at a time, not one email per claim.
        # Up to twice as many emails as threads are claimed, so a thread that finishes a
        # send finds the next one ready instead of waiting for a claim.
        target = min(self._held_max, max(1, math.ceil(rate * BATCH_SECONDS)))
        return target - (self._held_max - self._free), max(1, target // 4)

    async def _dispatch_once(self) -> float:
        """Claim and start one batch; return how long to sleep before the next look."""
        # Cleared first, so that a wake-up from here on ends the next sleep.
        self._wake.clear()
        limits = await self._limits()
        if not limits.sending_enabled:
            return POLL_SECONDS
        held = self._held_until - time.monotonic()
        if held > 0:
            return held
        batch, least = self._batch(limits.rate)
        if batch < least:
            return POLL_SECONDS
        async with self._pool.connection() as conn:
            claimed_at = time.monotonic()
            lease = self._settings.dispatch_lease_seconds
            claimed = await queue.claim(conn, self.id, batch, lease)
            if not claimed:
                return await self._until_due(conn)
            self._take(len(claimed))
            for email in claimed:
                # The database started the lease after this moment, so it ends no earlier.
                self._leases[email.request_id] = Lease(claimed_at + lease, lease)
            to_send = self._drop_suppressed(claimed)
            try:
                messages = await self._messages.load(conn, {e.message_position for e in to_send})
            except psycopg.OperationalError:
                await self._abandon(to_send)
                raise
        for email in to_send:
            outgoing = build_email(self._from, email.recipient, email.request_id,
                                   messages[email.message_position], self._personalizers)
            self._workers.submit(Attempt(email, outgoing, self._leases[email.request_id]))
        return 0.0

    def _take(self, count: int) -> None:
        self._free -= count
        self._idle.clear()

    def _give(self, count: int) -> None:
        self._free += count
        batch, least = self._batch(self._account.current.rate)
        if batch >= least:
            self._wake.set()
        if self._free == self._held_max and not self._reacting:
            self._idle.set()

    def _rate(self) -> float:
        return self._account.current.rate

    def _reserve(self, count: int) -> limiter.Reservation:
        """Reserve slots (blocking: called by a sending thread of the slot pool)."""
        limits = self._account.current
        return self._limiter.reserve(count, limits.rate, limits.daily_quota)

    async def _refund(self, *, everything: bool = False) -> None:
        """Give the daily quota of unused slots back (with `everything`, also those left)."""
        unused = self._slots.take_unused(everything=everything)
        if not unused:
            return
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await limiter.refund(conn, unused)
        except psycopg.OperationalError as error:
            # NOTE: these stay counted against the daily quota until their minute leaves
            # the 24-hour window.
            log.warning("unused_slots_not_refunded", count=sum(unused.values()), error=str(error))

    async def _limits(self) -> SendLimits:
        if self._account.due():
            return await asyncio.to_thread(self._account.refresh)
        return self._account.current

    async def _until_due(self, conn: queue.Connection) -> float:
        seconds = await queue.next_due(conn)
        if seconds is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(seconds, 0.0))

    async def _abandon(self, claimed: list[ClaimedEmail]) -> None:
        """Give back claimed emails that got neither a send nor a result (the database failed)."""
        for email in claimed:
            self._leases.pop(email.request_id, None)
        self._give(len(claimed))
        try:
            async with self._pool.connection() as conn:
                await record(conn, self.id, [Released(e.request_id, None) for e in claimed])
        except psycopg.OperationalError as error:
            # NOTE: these were never sent, yet their leases expire into `uncertain`;
            # `ses-sender uncertain resend` sends them safely.
            log.warning("claims_not_released", count=len(claimed), error=str(error))

    def _drop_suppressed(self, claimed: list[ClaimedEmail]) -> list[ClaimedEmail]:
        """Turn claimed emails to suppressed recipients into results; return the others."""
        kept = []
        for email in claimed:
            if email.suppressed is None:
                kept.append(email)
                continue
            SENDS.labels("suppressed").inc()
            log.info("email_suppressed", request_id=email.request_id, topic_id=email.topic_id,
                     reason=email.suppressed)
            self._add_result(Suppressed(email.request_id, email.topic_id, email.attempt,
                                        email.recipient, email.suppressed))
            self._give(1)
        return kept

    def _hold_locally(self, until: datetime, reason: str | None) -> None:
        seconds = max(0.0, until.timestamp() - time.time())
        self._held_until = time.monotonic() + seconds
        log.warning("sending_held", reason=reason, seconds=round(seconds, 1))

    # --- sending ---------------------------------------------------------------------

    def _send(self, attempt: Attempt) -> Outcome:
        """Run one attempt to the end (in a sending thread)."""
        return send_at_slot(self._sender, self._slots, attempt,
                            self._settings.ses_configuration_set)

    def _crashed(self, _attempt: Attempt, error: Exception) -> Outcome:
        return failure_of(error)

    def _finished(self, batch: list[tuple[Attempt, Outcome]]) -> None:
        """Take the outcomes of finished sends (on the event loop)."""
        done = 0
        for attempt, outcome in batch:
            claimed = attempt.claimed
            if isinstance(outcome, Unsent):
                # No SES call was made: the email goes back to the queue as it was.
                if outcome.due_at is not None:
                    self._hold_locally(outcome.due_at, outcome.reason)
                # A hold is logged once, as sending_held. A claim that ran out before its
                # slot means the database was out of reach for most of a lease.
                level = log.warning if outcome.reason == "lease_ending" else log.debug
                level("email_not_sent", request_id=claimed.request_id, reason=outcome.reason)
                self._add_result(Released(claimed.request_id, outcome.due_at))
            elif isinstance(outcome, SendFailure) and classify(outcome) in (
                "quota_exceeded", "account_paused"
            ):
                # The hold is written to the database first, and the email's room frees after.
                task = asyncio.create_task(self._held_failure(claimed, outcome))
                self._reacting.add(task)
                task.add_done_callback(self._reacting.discard)
                continue
            else:
                if isinstance(outcome, SendFailure) and classify(outcome) == "throttled":
                    self._throttled = True
                self._add_outcome(claimed, outcome, None)
            done += 1
        self._give(done)

    async def _held_failure(self, claimed: ClaimedEmail, failure: SendFailure) -> None:
        try:
            hold_until = await self._hold(claimed, failure)
            self._add_outcome(claimed, failure, hold_until)
        finally:
            self._reacting.discard(asyncio.current_task())
            self._give(1)

    def _add_outcome(
        self, claimed: ClaimedEmail, outcome: Accepted | SendFailure, hold_until: datetime | None
    ) -> None:
        result = result_of(claimed, outcome, max_attempts=self._settings.send_max_attempts,
                           hold_until=hold_until)
        self._log_result(result)
        self._add_result(result)

    async def _hold(self, claimed: ClaimedEmail, failure: SendFailure) -> datetime | None:
        """Hold every dispatcher after a quota or account error; return the hold's end."""
        reason = "daily_quota" if classify(failure) == "quota_exceeded" else "account_paused"
        if reason == "account_paused":
            log.error("ses_account_paused", code=failure.code, message=failure.message,
                      request_id=claimed.request_id)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                until = await limiter.hold(conn, HOLD_SECONDS, reason)
        except psycopg.OperationalError as error:
            # The email is retried after a backoff, and the next quota error tries the hold again.
            log.warning("sending_hold_not_recorded", reason=reason, error=str(error),
                        request_id=claimed.request_id)
            return None
        self._hold_locally(until, reason)
        self._slots.hold(until, reason)
        return until

    def _log_result(self, result: Result) -> None:
        if isinstance(result, Failed):
            outcome = "retry" if result.retry_at is not None else "failed"
            SENDS.labels(outcome).inc()
            fields = {"request_id": result.request_id, "topic_id": result.topic_id,
                      "attempt": result.attempt, "kind": result.kind, "code": result.code,
                      "error": result.message}
            if result.retry_at is None:
                log.error("email_send_failed", **fields)
            else:
                log.warning("email_send_retry", retry_at=result.retry_at.isoformat(), **fields)
        else:
            SENDS.labels("sent").inc()

    # --- recording -------------------------------------------------------------------

    def _add_result(self, result: Result | Released) -> None:
        self._results.append(result)
        self._results_ready.set()

    async def _record_results(self, halt: asyncio.Event) -> None:
        """Write results in batches as they come; keep and retry them while the database is away."""
        backoff = 0.2
        halted_at = math.inf
        while not (halt.is_set() and not self._results):
            await self._results_ready.wait()
            if not halt.is_set() and len(self._results) < RECORD_BATCH // 10:
                # A moment's wait lets the sends finishing meanwhile share the transaction:
                # a write costs a few round trips whether it carries one result or a hundred.
                await asyncio.sleep(RECORD_LINGER_SECONDS)
            self._results_ready.clear()
            if halt.is_set():
                halted_at = min(halted_at, time.monotonic())
            while self._results:
                batch = self._results[:RECORD_BATCH]
                try:
                    await self._write(batch)
                except psycopg.OperationalError as error:
                    if halt.is_set():
                        halted_at = min(halted_at, time.monotonic())
                    if time.monotonic() - halted_at > SHUTDOWN_RECORD_SECONDS:
                        # Their leases expire and another dispatcher marks them uncertain.
                        log.error("results_lost_at_shutdown", count=len(self._results),
                                  error=str(error))
                        return
                    log.warning("results_not_recorded", count=len(batch), error=str(error),
                                retry_in=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.2
                del self._results[: len(batch)]
                for result in batch:
                    self._leases.pop(result.request_id, None)
                if any(isinstance(r, Released) or (isinstance(r, Failed) and r.retry_at is not None)
                       for r in batch):
                    self._wake.set()

    async def _write(self, batch: list[Result | Released]) -> None:
        async with self._pool.connection() as conn:
            await record(conn, self.id, batch)
            if self._throttled:
                self._throttled = False
                async with conn.transaction():
                    await limiter.slow_down(conn)
                log.warning("rate_slowed_after_throttling")
        for result in batch:
            if isinstance(result, Sent):
                started = result.started_at
                log.info("email_sent", request_id=result.request_id, topic_id=result.topic_id,
                         ses_message_id=result.ses_message_id, attempt=result.attempt,
                         started_at=datetime.fromtimestamp(started, UTC).isoformat()
                         if started is not None else None)

    # --- maintenance -----------------------------------------------------------------

    async def _maintain(self, halt: asyncio.Event) -> None:
        """Once a second: renew this dispatcher's claims, give unused slots back to the
        quota, expire lost claims and, when configured, requeue uncertain emails."""
        while not halt.is_set():
            try:
                await self._refund()
                async with self._pool.connection() as conn:
                    await self._renew(conn)
                    expired = await queue.expire_leases(conn)
                    for request_id in expired:
                        SENDS.labels("uncertain").inc()
                        log.warning("email_send_uncertain", request_id=request_id)
                    grace = self._settings.resend_uncertain_after
                    if grace is not None:
                        requeued = await uncertain.resend(conn, older_than=grace)
                        if requeued:
                            self._wake.set()
            except psycopg.OperationalError as error:
                log.warning("maintenance_database_error", error=str(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), MAINTENANCE_SECONDS)

    async def _renew(self, conn: queue.Connection) -> None:
        lease = self._settings.dispatch_lease_seconds
        now = time.monotonic()
        due = [rid for rid, held in self._leases.items()
               if held.until - now < lease * RENEW_FRACTION]
        if not due:
            return
        renewed = await queue.renew(conn, self.id, due, lease)
        for request_id in due:
            held = self._leases.get(request_id)
            if held is None:
                continue
            if request_id in renewed:
                held.until = now + lease
            else:
                # The claim is gone (its lease ran out while the database was away): a send
                # still waiting for its slot must not start.
                held.until = -math.inf


async def run_dispatcher(
    settings: Settings,
    pool: Pool,
    url: str,
    stop: asyncio.Event,
    *,
    client: SESV2Client | None = None,
    personalizers: Sequence[Personalizer] = (),
) -> None:
    """Run one dispatcher as a component of `ses-sender run` or `ses-sender dispatch`."""
    # A sending thread that wakes at its slot waits for the GIL up to the switch interval
    # (5 ms by default) while another thread runs; 1 ms keeps sends close to their slots.
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    ses = client or create_client(settings)
    sender = create_sender(settings, max_connections=settings.dispatch_concurrency)
    await Dispatcher(settings, pool, url, ses, sender, personalizers).run(stop)
