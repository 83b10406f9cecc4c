"""The dispatcher: claims due emails, takes rate slots, calls SES and records the results.

Any number of dispatchers may run against one database. Each claims a batch with
FOR UPDATE SKIP LOCKED, reserves start times from the shared limiter, sends each email at
its slot from a thread pool sharing one boto3 client, and records results in batches.
A claim is committed before SES is called and the result right after, so a dispatcher that
dies in between leaves an email whose lease expires and which becomes uncertain.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
from service.dispatch.results import Failed, Result, Sent, Suppressed, record
from service.dispatch.sending import Attempt, MissedSlot, result_of, send_at_slot
from service.dispatch.ses import SESV2Client, create_client
from service.errors import ConfigError
from service.logging import get_logger
from service.metrics import LIMITER_WAIT, SENDS, SLOTS_MISSED
from service.sending.submit import DUE_CHANNEL
from service.suppression import suppression_key

log = get_logger(__name__)

POLL_SECONDS = 2.0
"""Fallback wake-up when no notification arrives."""
MAINTENANCE_SECONDS = 1.0
BATCH_SECONDS = 0.25
"""A claim takes at most this many seconds of sends at the current rate."""
MAX_BATCH = 500
HOLD_SECONDS = 60.0
"""How long SES quota or account errors stop every dispatcher before the next try."""
RECORD_BATCH = 1000
SHUTDOWN_RECORD_SECONDS = 60.0
"""How long a stopping dispatcher keeps trying to record results while the database is away."""
INITIAL_PACE = 1000.0
"""Sends per second a new dispatcher starts reserving at when EMAIL_RATE is higher."""
MIN_PACE = 100.0
"""The pace never drops below this (or EMAIL_RATE when lower) however many slots are missed."""


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        url: str,
        client: SESV2Client,
        personalizers: Sequence[Personalizer] = (),
    ) -> None:
        if settings.email_sender is None:
            raise ConfigError("EMAIL_SENDER is missing: set it to a sender address verified in SES")
        self.id = queue.new_dispatcher_id()
        self._settings = settings
        self._sender = settings.email_sender
        self._pool = pool
        self._url = url
        self._client = client
        self._personalizers = tuple(personalizers)
        self._account = AccountLimits(settings, client)
        self._capacity = settings.dispatch_concurrency
        self._free = self._capacity
        self._freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._results: list[Result] = []
        self._results_ready = asyncio.Event()
        self._throttled = False
        self._held_until = 0.0
        self._last_slot = 0.0
        self._missed: list[ClaimedEmail] = []
        self._misses = 0
        self._pace: float | None = None
        self._paced_at = 0.0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._messages = MessageCache()
        self._executor = ThreadPoolExecutor(
            max_workers=self._capacity, thread_name_prefix="ses-send"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set, then finish and record every send in flight."""
        log.info("dispatcher_started", dispatcher=self.id)
        halt = asyncio.Event()
        helpers = [
            asyncio.create_task(listen(self._url, DUE_CHANNEL, self._wake, halt)),
            asyncio.create_task(self._maintain(halt)),
        ]
        recorder = asyncio.create_task(self._record_results(halt))
        try:
            await self._dispatch(stop)
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            await self._give_back_missed()
            halt.set()
            self._results_ready.set()
            await recorder
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._executor.shutdown(wait=True)
            log.info("dispatcher_stopped", dispatcher=self.id)

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
            if delay > 0:
                await self._sleep(stop, delay)

    async def _dispatch_once(self) -> float:
        """Claim and start one batch; return how long to sleep before the next look."""
        # Cleared first, so that a send finishing from here on ends the next sleep.
        self._freed.clear()
        limits = await self._limits()
        if not limits.sending_enabled:
            return POLL_SECONDS
        held = self._held_until - time.monotonic()
        if held > 0:
            return held
        # Claim no further ahead than one batch's worth of slots, so that claimed emails
        # do not wait long for their slot and other dispatchers get their share.
        if self._missed:
            await self._restart_missed(limits)
            return 0.0
        ahead = self._last_slot - time.monotonic() - BATCH_SECONDS
        if ahead > 0:
            return ahead
        if self._free == 0:
            return POLL_SECONDS
        pace = min(limits.rate, self._pace or limits.rate)
        batch = min(self._free, MAX_BATCH, max(1, math.ceil(pace * BATCH_SECONDS)))
        self._wake.clear()
        async with self._pool.connection() as conn:
            claimed = await queue.claim(
                conn, self.id, batch, self._settings.dispatch_lease_seconds
            )
            if not claimed:
                return await self._until_due(conn)
            self._free -= len(claimed)
            handed: set[str] = set()
            try:
                to_send = await self._drop_suppressed(conn, claimed, handed)
                await self._start(conn, to_send, limits, handed)
            except psycopg.OperationalError:
                await self._abandon([e for e in claimed if e.request_id not in handed])
                raise
        return 0.0

    async def _give_back_missed(self) -> None:
        """On shutdown, return emails that missed their slot (never sent) to the queue."""
        if not self._missed:
            return
        try:
            async with self._pool.connection() as conn:
                await queue.release(conn, self.id, [e.request_id for e in self._missed], None)
        except psycopg.OperationalError as error:
            # Their leases expire and they become uncertain, although none was sent.
            log.warning("missed_sends_not_released", count=len(self._missed), error=str(error))

    async def _restart_missed(self, limits: SendLimits) -> None:
        """Reserve new slots for sends that missed theirs; they are still claimed by us."""
        missed, self._missed = self._missed, []
        handed: set[str] = set()
        try:
            async with self._pool.connection() as conn:
                await self._start(conn, missed, limits, handed)
        except BaseException:
            self._missed.extend(e for e in missed if e.request_id not in handed)
            raise

    def _paced(self, rate: float) -> float:
        """Return the rate to reserve slots at: `rate`, or less while sends miss their slots.

        A process that cannot start its sends within their reservation's tolerance
        (too little CPU for the rate) reserves wider spacing, so it spends the shared budget
        no faster than it can use it. The pace climbs back by a tenth per batch without a miss.
        """
        now = time.monotonic()
        if self._pace is None:
            self._pace = min(rate, INITIAL_PACE)
        if self._misses and now - self._paced_at >= BATCH_SECONDS:
            # Once per batch period at most: a stall makes a whole batch miss at once.
            self._pace = max(min(rate, MIN_PACE), self._pace * 0.7)
            self._paced_at = now
            self._misses = 0
        elif not self._misses:
            self._pace = min(rate, self._pace * 1.1)
        return self._pace

    async def _limits(self) -> SendLimits:
        if self._account.due():
            return await asyncio.to_thread(self._account.refresh)
        return self._account.current

    async def _until_due(self, conn: queue.Connection) -> float:
        seconds = await queue.next_due(conn)
        if seconds is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(seconds, 0.0))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep until `seconds` pass, a notification arrives, a slot frees or `stop` is set."""
        waits = [asyncio.create_task(e.wait()) for e in (stop, self._wake, self._freed)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()

    async def _abandon(self, claimed: list[ClaimedEmail]) -> None:
        """Give back claimed emails that got neither a send nor a result (the database failed)."""
        self._free += len(claimed)
        self._freed.set()
        try:
            async with self._pool.connection() as conn:
                await queue.release(conn, self.id, [e.request_id for e in claimed], None)
        except psycopg.OperationalError as error:
            # NOTE: these were never sent, yet their leases expire into `uncertain`;
            # `ses-sender uncertain resend` sends them safely.
            log.warning("claims_not_released", count=len(claimed), error=str(error))

    async def _drop_suppressed(
        self, conn: queue.Connection, claimed: list[ClaimedEmail], handed: set[str]
    ) -> list[ClaimedEmail]:
        keys = {email.request_id: suppression_key(email.recipient) for email in claimed}
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT address, reason FROM suppressions WHERE address = ANY(%s)",
                (list(set(keys.values())),),
            )
            suppressed = {str(address): str(reason) for address, reason in await cursor.fetchall()}
        if not suppressed:
            return claimed
        kept = []
        for email in claimed:
            reason = suppressed.get(keys[email.request_id])
            if reason is None:
                kept.append(email)
                continue
            SENDS.labels("suppressed").inc()
            log.info("email_suppressed", request_id=email.request_id, topic_id=email.topic_id,
                     reason=reason)
            self._add_result(Suppressed(email.request_id, email.topic_id, email.attempt,
                                        email.recipient, reason))
            handed.add(email.request_id)
            self._release_slot()
        return kept

    async def _start(
        self,
        conn: queue.Connection,
        claimed: list[ClaimedEmail],
        limits: SendLimits,
        handed: set[str],
    ) -> None:
        """Reserve slots for `claimed` and start a send for each granted one.

        `handed` collects the request ids that got a send or went back to the queue, so that
        the caller can give back the rest if the database fails half way.
        """
        if not claimed:
            return
        async with conn.transaction():
            reservation = await limiter.reserve(conn, len(claimed), self._paced(limits.rate),
                                                limits.daily_quota)
        granted, rest = claimed[: reservation.granted], claimed[reservation.granted :]
        if rest:
            await queue.release(conn, self.id, [e.request_id for e in rest],
                                reservation.held_until)
            handed.update(e.request_id for e in rest)
            self._free += len(rest)
            if reservation.held_until is not None:
                self._hold_locally(reservation.held_until, reservation.held_for)
        if not granted:
            return
        LIMITER_WAIT.observe(max(0.0, reservation.first_slot - time.monotonic()))
        self._last_slot = reservation.slot(reservation.granted - 1)
        messages = await self._messages.load(conn, {e.message_position for e in granted})
        for index, email in enumerate(granted):
            message = messages[email.message_position]
            outgoing = build_email(self._sender, email.recipient, email.request_id, message,
                                   self._personalizers)
            attempt = Attempt(email, outgoing, reservation.slot(index), reservation.tolerance)
            task = asyncio.create_task(self._send(attempt))
            handed.add(email.request_id)
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def _hold_locally(self, until: datetime, reason: str | None) -> None:
        seconds = max(0.0, until.timestamp() - time.time())
        self._held_until = time.monotonic() + seconds
        log.warning("sending_held", reason=reason, seconds=round(seconds, 1))

    # --- sending ---------------------------------------------------------------------

    async def _send(self, attempt: Attempt) -> None:
        claimed = attempt.claimed
        keep_slot = False
        try:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                self._executor, send_at_slot, self._client, attempt,
                self._settings.ses_configuration_set,
            )
            if isinstance(outcome, MissedSlot):
                # No SES call was made; the email stays claimed and gets a new slot.
                SLOTS_MISSED.inc()
                log.debug("send_slot_missed", request_id=claimed.request_id,
                          late_ms=round(outcome.late_by * 1000, 1))
                self._missed.append(claimed)
                self._misses += 1
                self._wake.set()
                keep_slot = True
                return
            hold_until = None
            if isinstance(outcome, SendFailure):
                hold_until = await self._react(claimed, outcome)
            result = result_of(claimed, outcome, max_attempts=self._settings.send_max_attempts,
                               hold_until=hold_until)
            self._log_result(result)
            self._add_result(result)
        finally:
            if not keep_slot:
                self._release_slot()

    async def _react(self, claimed: ClaimedEmail, failure: SendFailure) -> datetime | None:
        """Apply what a failure means for all sending; return the hold's end, if any."""
        kind = classify(failure)
        if kind == "throttled":
            self._throttled = True
            return None
        if kind not in ("quota_exceeded", "account_paused"):
            return None
        reason = "daily_quota" if kind == "quota_exceeded" else "account_paused"
        if kind == "account_paused":
            log.error("ses_account_paused", code=failure.code, message=failure.message,
                      request_id=claimed.request_id)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                until = await limiter.hold(conn, HOLD_SECONDS, reason)
        except psycopg.OperationalError:
            return None
        self._hold_locally(until, reason)
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

    def _release_slot(self) -> None:
        self._free += 1
        self._freed.set()

    # --- recording -------------------------------------------------------------------

    def _add_result(self, result: Result) -> None:
        self._results.append(result)
        self._results_ready.set()

    async def _record_results(self, halt: asyncio.Event) -> None:
        """Write results in batches as they come; keep and retry them while the database is away."""
        backoff = 0.2
        halted_at = math.inf
        while not (halt.is_set() and not self._results):
            await self._results_ready.wait()
            self._results_ready.clear()
            if halt.is_set():
                halted_at = min(halted_at, time.monotonic())
            while self._results:
                batch = self._results[:RECORD_BATCH]
                try:
                    await self._write(batch)
                except psycopg.OperationalError as error:
                    if halt.is_set() and time.monotonic() - halted_at > SHUTDOWN_RECORD_SECONDS:
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
                if any(isinstance(r, Failed) and r.retry_at is not None for r in batch):
                    self._wake.set()

    async def _write(self, batch: list[Result]) -> None:
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
        """Expire lost claims and, when configured, requeue uncertain emails, once a second."""
        while not halt.is_set():
            try:
                async with self._pool.connection() as conn:
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
    ses = client or create_client(settings, max_connections=settings.dispatch_concurrency)
    await Dispatcher(settings, pool, url, ses, personalizers).run(stop)
