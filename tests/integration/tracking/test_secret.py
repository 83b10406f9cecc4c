"""The tracking secret: from the settings, or generated once and shared through the database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg

from service.config import Settings
from service.db.pool import Pool, open_pool
from service.secret import Secret
from service.tracking.secret import stored_secret, tracking_key
from tests.conftest import make_settings

_READ_SECRET = """
import asyncio, sys
import psycopg
from service.tracking.secret import stored_secret

async def main():
    async with await psycopg.AsyncConnection.connect(sys.argv[1]) as conn:
        print(await stored_secret(conn))

asyncio.run(main())
"""


async def test_secret_generated_once(pool: Pool) -> None:
    """The first call stores a secret; later calls return the same one."""
    async with pool.connection() as conn:
        first = await stored_secret(conn)
        second = await stored_secret(conn)
    assert first == second
    assert len(first) >= 32


async def test_secret_shared_by_two_pools(database_url: str) -> None:
    """Two pools racing to create the secret end up with the same one."""
    pools = [await open_pool(database_url, name=f"race{i}", min_size=4) for i in range(2)]
    try:

        async def read(pool: Pool) -> str:
            async with pool.connection() as conn:
                return await stored_secret(conn)

        secrets = await asyncio.gather(*(read(p) for p in pools for _ in range(4)))
    finally:
        for opened in pools:
            await opened.close()
    assert len(set(secrets)) == 1
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM tracking_secret").fetchone()
    assert rows == (1,)


def test_secret_shared_by_processes(database_url: str) -> None:
    """Processes started at once all read the one stored secret."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _READ_SECRET, database_url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert len(set(outputs)) == 1
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT secret FROM tracking_secret").fetchone()
    assert stored == (outputs[0],)


async def test_configured_secret_wins(pool: Pool, settings: Settings, tmp_path: Path) -> None:
    """TRACKING_SECRET is used as it is and nothing is stored."""
    configured = make_settings(
        tmp_path, settings.database_url.reveal() if settings.database_url else "",
        tracking_secret=Secret("configured-secret-0123456789"),
    )
    async with pool.connection() as conn:
        key = await tracking_key(conn, configured)
        cursor = await conn.execute("SELECT count(*) FROM tracking_secret")
        count = await cursor.fetchone()
    assert key == b"configured-secret-0123456789"
    assert count == (0,)


async def test_unset_secret_uses_stored(pool: Pool, settings: Settings) -> None:
    """Without TRACKING_SECRET the key is the stored secret."""
    async with pool.connection() as conn:
        key = await tracking_key(conn, settings)
        stored = await stored_secret(conn)
    assert key == stored.encode()
