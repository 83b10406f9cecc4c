"""The sending threads of one dispatcher and the hand-over of their outcomes to the event loop.

Each thread takes the next attempt from a queue and runs it to the end (sign, wait for a
slot, call SES). Outcomes go back to the event loop in batches. A thread schedules a drain
only when none is pending, so a busy dispatcher wakes its loop once per batch of finished
sends rather than once per send. No asyncio task or future is made per email.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from service.logging import get_logger

log = get_logger(__name__)

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")


class Workers(Generic[Job, Outcome]):
    def __init__(
        self,
        count: int,
        run: Callable[[Job], Outcome],
        deliver: Callable[[list[tuple[Job, Outcome]]], None],
        failed: Callable[[Job, Exception], Outcome],
        *,
        name: str = "ses-send",
    ) -> None:
        """`run` is called in a worker thread for each job; `deliver` on the event loop with
        finished (job, outcome) pairs, in the order they finished. `failed` turns an
        exception `run` raised into the job's outcome, so that every job comes back."""
        self._run = run
        self._failed = failed
        self._deliver = deliver
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._finished: deque[tuple[Job, Outcome]] = deque()
        self._drain_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        """Let every thread finish the jobs queued so far, then end (blocking)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        assert self._loop is not None
        while (job := self._jobs.get()) is not None:
            try:
                outcome = self._run(job)
            except Exception as error:
                # `run` returns failures as outcomes, so this is a bug. The job still comes
                # back, or its email would stay claimed.
                log.exception("send_worker_failed")
                outcome = self._failed(job, error)
            self._finished.append((job, outcome))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        # Cleared before taking, so that a job finishing from here on schedules another drain.
        self._drain_scheduled = False
        batch = []
        while self._finished:
            batch.append(self._finished.popleft())
        if batch:
            self._deliver(batch)
