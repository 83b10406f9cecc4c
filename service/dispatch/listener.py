"""Wake-ups for dispatchers: LISTEN on its own autocommit connection, reconnecting when lost."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from psycopg import sql

from service.logging import get_logger

log = get_logger(__name__)

LIVENESS_SECONDS = 5.0
MAX_RECONNECT_SECONDS = 10.0


async def listen(url: str, channel: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Set `wake` on every notification on `channel` until `stop` is set.

    After each (re)connection `wake` is set once too, because notifications sent while the
    connection was down are lost and the due queue must be looked at again.
    """
    backoff = 0.5
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if backoff > 0.5:
                    log.warning("listener_reconnected", channel=channel)
                backoff = 0.5
                wake.set()
                await _receive(conn, wake, stop)
        except psycopg.OperationalError as error:
            log.warning("listener_connection_lost", channel=channel, error=str(error),
                        retry_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_RECONNECT_SECONDS)


async def _receive(
    conn: psycopg.AsyncConnection[tuple[object, ...]], wake: asyncio.Event, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        async for _ in conn.notifies(timeout=LIVENESS_SECONDS, stop_after=1):
            wake.set()
        # A quiet connection may be a dead one: a query finds out and raises if it is.
        await conn.execute("SELECT 1")
