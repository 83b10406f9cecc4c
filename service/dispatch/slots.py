"""Rate slots reserved by one dispatcher, handed to whichever of its sends is ready first.

Sending threads sign their request, then `take` a slot: the earliest reserved start time
that can still be used. A slot belongs to no particular email. A thread that is slow to get
ready (the GIL, a garbage collection) takes a later one, and a slot is lost only when no
send at all was ready within its tolerance (`limiter.window_tolerance`).

When no slot is left, one of the waiting threads reserves more from the shared limiter on
its own connection. It reserves for the threads waiting at that moment, never more than
HORIZON_SECONDS ahead, so a dispatcher takes the shared budget no faster than it can use it.
The thread does this itself because the event loop competes with every sending thread for
the GIL, which would lengthen the round trip. Unused slots are given back to the daily quota
(`limiter.refund`, see `take_unused`) and are never handed out again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from service.dispatch.limiter import Reservation
from service.logging import get_logger
from service.metrics import LIMITER_WAIT, SLOTS_MISSED

log = get_logger(__name__)

HORIZON_SECONDS = 0.25
"""How far ahead of now a dispatcher reserves slots while sends are waiting."""
MAX_RESERVATION = 500
RETRY_SECONDS = 0.5
"""How long a reserving thread waits after the database failed before it tries again."""

Reserve = Callable[[int], Reservation]
"""Blocking: reserve up to n slots from the shared limiter."""


class SlotsHeld(Exception):
    """Sending is held (daily quota, paused account); no slot comes before `until`."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(f"sending held until {until.isoformat()}: {reason}")
        self.until = until
        self.reason = reason


class LeaseEnding(Exception):
    """No slot came early enough for the send to finish within the email's claim."""


@dataclass(frozen=True)
class _Slot:
    at: float
    """time.monotonic() at which the send may start."""
    tolerance: float
    """How late after `at` it may still start."""
    minute: datetime
    """The quota minute the slot was counted in, for the refund if it goes unused."""


class SlotPool:
    def __init__(self, reserve: Reserve, rate: Callable[[], float]) -> None:
        self._reserve = reserve
        self._rate = rate
        self._cond = threading.Condition()
        self._slots: deque[_Slot] = deque()
        self._waiting = 0
        self._coming = 0
        """Threads that announced they will take a slot soon (`expect`) and have not yet."""
        self._reserving = False
        self._reserved_until = 0.0
        """time.monotonic() of the last slot reserved so far."""
        self._held: tuple[float, datetime, str] | None = None
        self._unused: Counter[datetime] = Counter()

    def expect(self) -> None:
        """Say that this thread will `take` a slot shortly (it is signing its request), so
        that a reservation made meanwhile covers it too."""
        with self._cond:
            self._coming += 1

    def unexpect(self) -> None:
        """Withdraw an `expect` (the thread takes its slot now, or will not take one)."""
        with self._cond:
            self._coming = max(0, self._coming - 1)

    def take(self, latest: Callable[[], float] = lambda: math.inf) -> float:
        """Wait for a slot and its time; return time.time() at the moment the send may start.

        `latest()` is the last moment (time.monotonic()) the send may start; it is read
        again while waiting, as it may move. LeaseEnding is raised when no slot comes by
        then, SlotsHeld when sending is held.
        """
        self.unexpect()
        requested_at = time.monotonic()
        while True:
            slot = self._next_slot(latest)
            delay = slot.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            if now - slot.at <= slot.tolerance:
                LIMITER_WAIT.observe(now - requested_at)
                return time.time()
            # Woke too late: this slot cannot be used without breaking the window rule.
            with self._cond:
                self._lose(slot)

    def _next_slot(self, latest: Callable[[], float]) -> _Slot:
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    self._check_held()
                    self._drop_expired()
                    last = latest()
                    if self._slots:
                        if self._slots[0].at > last:
                            raise LeaseEnding
                        return self._slots.popleft()
                    now = time.monotonic()
                    if now >= last:
                        raise LeaseEnding
                    wait = min(1.0, last - now)
                    if not self._reserving:
                        ahead = self._reserved_until - now - HORIZON_SECONDS
                        if ahead <= 0:
                            self._reserve_for_waiting()
                            continue
                        wait = min(wait, ahead)
                    self._cond.wait(wait)
            finally:
                self._waiting -= 1

    def _reserve_for_waiting(self) -> None:
        """Reserve slots for the threads waiting now; called with the lock held, which is
        let go during the database round trip."""
        count = min(self._waiting + self._coming, MAX_RESERVATION,
                    max(1, math.ceil(self._rate() * HORIZON_SECONDS)))
        self._reserving = True
        self._cond.release()
        try:
            reservation: Reservation | None = self._reserve(count)
        except psycopg.OperationalError as error:
            log.warning("slot_reservation_failed", error=str(error), retry_in=RETRY_SECONDS)
            reservation = None
            time.sleep(RETRY_SECONDS)
        finally:
            self._cond.acquire()
            self._reserving = False
        if reservation is None:
            self._cond.notify()
        elif reservation.granted == 0:
            assert reservation.held_until is not None
            self._hold(reservation.held_until, reservation.held_for or "held")
        else:
            self._add(reservation)

    def _check_held(self) -> None:
        if self._held is None:
            return
        ends, until, reason = self._held
        if time.monotonic() < ends:
            raise SlotsHeld(until, reason)
        self._held = None

    def _drop_expired(self) -> None:
        now = time.monotonic()
        while self._slots and now - self._slots[0].at > self._slots[0].tolerance:
            self._lose(self._slots.popleft())

    def _lose(self, slot: _Slot) -> None:
        SLOTS_MISSED.inc()
        self._unused[slot.minute] += 1

    def _add(self, reservation: Reservation) -> None:
        assert reservation.minute is not None
        tolerance = reservation.tolerance
        self._slots.extend(
            _Slot(reservation.slot(i), tolerance, reservation.minute)
            for i in range(reservation.granted)
        )
        self._reserved_until = max(self._reserved_until, reservation.slot(reservation.granted - 1))
        # One waiting thread per slot, and one more to reserve again if some are left over.
        self._cond.notify(reservation.granted + 1)

    def hold(self, until: datetime, reason: str) -> None:
        """Hold this dispatcher's sends until `until` (SES reported a quota or account error)."""
        with self._cond:
            self._hold(until, reason)

    def _hold(self, until: datetime, reason: str) -> None:
        seconds = max(0.0, until.timestamp() - time.time())
        self._held = (time.monotonic() + seconds, until, reason)
        self._cond.notify_all()

    def take_unused(self, *, everything: bool = False) -> Counter[datetime]:
        """Return and forget the unused slots per quota minute (with `everything`, all left)."""
        with self._cond:
            if everything:
                for slot in self._slots:
                    self._unused[slot.minute] += 1
                self._slots.clear()
            else:
                self._drop_expired()
            unused, self._unused = self._unused, Counter()
            return unused
