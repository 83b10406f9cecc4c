"""Liveness and readiness probes."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from service.api.context import request_context
from service.db.migrate import discover
from service.logging import get_logger

log = get_logger(__name__)


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    database: bool
    schema_version: int | None
    expected_schema_version: int
    reason: str | None = None


@get("/health", summary="Liveness: the process is up", tags=["health"], sync_to_thread=False)
def health() -> Health:
    return Health("ok")


@get("/ready", summary="Readiness: database reachable and migrations applied", tags=["health"])
async def ready(request: Request[object, object, State]) -> Response[Readiness]:
    expected = max((m.version for m in discover()), default=0)
    try:
        async with request_context(request).pool.connection(timeout=5) as conn:
            cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            row = await cursor.fetchone()
            if row is not None and row[0]:
                cursor = await conn.execute("SELECT max(version) FROM schema_migrations")
                row = await cursor.fetchone()
            else:
                row = None
    except Exception as error:
        log.warning("readiness_database_unreachable", error=str(error))
        body = Readiness("unavailable", False, None, expected, "database unreachable")
        return Response(body, status_code=503)
    version = row[0] if row else None
    if version is None or version < expected:
        body = Readiness(
            "unavailable", True, version, expected, "migrations pending: run `ses-sender migrate`"
        )
        return Response(body, status_code=503)
    return Response(Readiness("ok", True, version, expected))
