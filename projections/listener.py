"""Waking projection runners on NOTIFY `events`, with reconnects after database restarts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import psycopg

from service.events.store import NOTIFY_CHANNEL
from service.logging import get_logger

log = get_logger(__name__)

# How long to wait for a notification before checking that the connection still works.
_LIVENESS_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = 30.0


async def listen(url: str, wakes: Sequence[asyncio.Event], stop: asyncio.Event) -> None:
    """Set every event in `wakes` on each notification until `stop` is set.

    Runs on its own autocommit connection. After a reconnect it sets them once too, since
    notifications sent while it was away are lost.
    """
    backoff = 0.5
    while not stop.is_set():
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except psycopg.OperationalError as error:
            log.warning("projection_listener_connect_failed", error=str(error), retry_in=backoff)
            await _sleep_unless_stopped(stop, backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            continue
        backoff = 0.5
        try:
            await _listen_on(conn, wakes, stop)
        except psycopg.OperationalError as error:
            log.warning("projection_listener_disconnected", error=str(error))
        finally:
            await conn.close()


async def _listen_on(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    wakes: Sequence[asyncio.Event],
    stop: asyncio.Event,
) -> None:
    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    _wake_all(wakes)
    while not stop.is_set():
        received = False
        gen = conn.notifies(timeout=_LIVENESS_SECONDS, stop_after=1)
        async for _ in gen:
            received = True
        if received:
            _wake_all(wakes)
        else:
            await conn.execute("SELECT 1")


def _wake_all(wakes: Sequence[asyncio.Event]) -> None:
    for wake in wakes:
        wake.set()


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
