"""`/v1/suppressions`: list, add and remove addresses on the suppression list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from service.addresses import InvalidAddress, normalize_address
from service.api.auth import SECURITY, require_api_key
from service.api.context import request_context
from service.api.errors import ApiError
from service.events.types import SuppressionReason
from service.suppression import suppress, suppression_key, unsuppress

MAX_NOTE_LENGTH = 1000


class Suppression(msgspec.Struct, rename="camel"):
    address: str
    reason: str
    request_id: str | None
    note: str | None
    created_at: datetime


class SuppressionPage(msgspec.Struct, rename="camel"):
    suppressions: list[Suppression]
    next_after: str | None
    """Pass as `after` to read the next page; null on the last page."""


class SuppressionRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    address: str
    reason: SuppressionReason = "manual"
    note: str | None = None


class SuppressionAdded(msgspec.Struct, rename="camel"):
    address: str
    added: bool
    """False when the address was already on the list; its entry is unchanged then."""


# Keyset paging on the primary key: stable while entries are added and removed.
_LIST = """
SELECT address, reason, request_id::text, note, created_at
FROM suppressions
WHERE address > %(after)s
  AND (%(address)s::text IS NULL OR address ILIKE '%%' || %(address)s || '%%' ESCAPE '\\')
ORDER BY address
LIMIT %(limit)s
"""


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _checked_address(address: str) -> str:
    try:
        return normalize_address(address)
    except InvalidAddress as error:
        raise ApiError(400, f"{error}.", "address") from None


class SuppressionController(Controller):
    path = "/v1/suppressions"
    guards = [require_api_key]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY
    tags = ["suppressions"]  # noqa: RUF012

    @get(summary="List suppressed addresses, in address order")
    async def list_suppressions(
        self,
        request: Request[object, object, State],
        address: Annotated[
            str | None, QueryParameter(description="Only addresses containing this text, any case.")
        ] = None,
        after: Annotated[
            str, QueryParameter(description="The nextAfter of the previous page.")
        ] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Entries per page.")] = 100,
    ) -> SuppressionPage:
        params: dict[str, Any] = {
            "after": after,
            "address": _like_escaped(address) if address else None,
            "limit": limit,
        }
        async with request_context(request).pool.connection() as conn:
            cursor = await conn.execute(_LIST, params)
            rows = await cursor.fetchall()
        entries = [Suppression(*row) for row in rows]
        next_after = entries[-1].address if len(entries) == limit else None
        return SuppressionPage(entries, next_after)

    @post(summary="Add an address to the suppression list", status_code=201)
    async def add_suppression(
        self, request: Request[object, object, State], data: JSONBody[SuppressionRequest]
    ) -> Response[SuppressionAdded]:
        address = _checked_address(data.address)
        if data.note is not None and len(data.note) > MAX_NOTE_LENGTH:
            raise ApiError(400, f"note is longer than {MAX_NOTE_LENGTH} characters.", "note")
        async with request_context(request).pool.connection() as conn, conn.transaction():
            added = await suppress(conn, address, data.reason, note=data.note)
        return Response(SuppressionAdded(address, added), status_code=201 if added else 200)

    @delete("/{email:str}", summary="Remove an address from the suppression list", status_code=204)
    async def remove_suppression(
        self, request: Request[object, object, State], email: FromPath[str]
    ) -> None:
        async with request_context(request).pool.connection() as conn, conn.transaction():
            removed = await unsuppress(conn, email, note="removed through the API")
        if not removed:
            raise ApiError(
                404, f"{suppression_key(email)!r} is not on the suppression list.", "email"
            )
