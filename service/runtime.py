"""Running long-lived components (API, dispatcher, projector) until a signal stops them."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping

from service.logging import get_logger

log = get_logger(__name__)

Component = Callable[[asyncio.Event], Awaitable[None]]
"""A coroutine function that runs until the event is set, then finishes its work and returns."""


async def run_components(components: Mapping[str, Component]) -> None:
    """Run every component until SIGINT or SIGTERM, or until one of them fails.

    On a signal each component is asked to stop and given time to finish what is in flight.
    If one component fails, the others are stopped too and the error is raised.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    tasks: dict[asyncio.Task[None], str] = {
        asyncio.create_task(_await(run(stop)), name=name): name
        for name, run in components.items()
    }
    failure: BaseException | None = None
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and failure is None:
                    failure = error
                    log.error("component_failed", component=tasks[task], exc_info=error)
                if not stop.is_set():
                    # One component ending (failed or not) ends the process: run the rest down.
                    log.info("component_stopped", component=tasks[task])
                    stop.set()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if failure is not None:
        raise failure


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():
        return
    log.info("shutdown_requested", signal=signal.Signals(signum).name)
    stop.set()
