"""Connection pools and the resolution of which database to use."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from service.config import Settings
from service.db.embedded import EmbeddedPostgres
from service.logging import get_logger

log = get_logger(__name__)

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


def embedded_server(settings: Settings) -> EmbeddedPostgres | None:
    """Return the embedded server when no external database is configured, else None."""
    if settings.database_url is not None:
        return None
    return EmbeddedPostgres(settings.data_dir)


def database_url(settings: Settings, embedded: EmbeddedPostgres | None) -> str:
    """Return the URL to connect to, starting the embedded server if it is the one in use."""
    if settings.database_url is not None:
        return settings.database_url.reveal()
    assert embedded is not None
    return embedded.start()


async def open_pool(url: str, *, name: str, min_size: int = 2, max_size: int = 10) -> Pool:
    """Open a pool and wait until its first connections work, so bad URLs fail at startup."""
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        # A broken connection (database restart) is replaced instead of handed out.
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True, timeout=30)
    return pool
