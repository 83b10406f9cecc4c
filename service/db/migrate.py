"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

A session-level advisory lock serialises concurrent runs, so two processes that start at
once apply each file exactly once. The second one finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from service.errors import MigrationError
from service.logging import get_logger

log = get_logger(__name__)

# An arbitrary constant that identifies this lock among the database's advisory locks.
MIGRATION_LOCK_KEY = 0x5E5_0001
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def migrations_dir() -> Path:
    """Locate the migrations: inside the installed package, or `sql/` of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    """List the migration files in version order; reject stray or duplicate numbers."""
    folder = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"migration file name {path.name!r} is invalid: expected NNN_name.sql, "
                f"with lower-case letters, digits and underscores"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"migrations {found[version].path.name!r} and {path.name!r} share version {version}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[version] for version in sorted(found)]


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def applied_versions(conn: psycopg.Connection[tuple[int]]) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def migrate(url: str, directory: Path | None = None) -> list[Migration]:
    """Apply every migration not applied yet; return the ones applied by this call."""
    pending_all = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_CREATE_LEDGER)
            done = applied_versions(conn)
            for migration in pending_all:
                if migration.version in done:
                    continue
                _apply(conn, migration)
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def _apply(conn: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(sql.SQL(migration.sql()))
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    except psycopg.Error as error:
        raise MigrationError(
            f"migration {migration.path.name} failed: {error.diag.message_primary or error}"
        ) from error
    log.info("migration_applied", version=migration.version, name=migration.name)


def pending(url: str, directory: Path | None = None) -> list[Migration]:
    """Return the migrations that `migrate` would apply."""
    with psycopg.connect(url) as conn:
        done = applied_versions(conn)
    return [m for m in discover(directory) if m.version not in done]
