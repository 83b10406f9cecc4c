"""The `email_status` read model: per email, its current status and milestone times."""

from __future__ import annotations

from collections.abc import Sequence

from projections.base import Connection, Tables
from projections.email_row import COLUMNS, EmailRow, fold
from projections.fields import request_id_of
from service.events.store import StoredEvent

_LOAD = f"SELECT {', '.join(COLUMNS)} FROM {{email_status}} WHERE request_id = ANY(%s)"

_TYPES = {
    "attempts": "integer",
    "opens": "integer",
    "machine_opens": "integer",
    "clicks": "integer",
    "last_position": "bigint",
}


def _array_type(column: str) -> str:
    if column in _TYPES:
        return _TYPES[column]
    return "timestamptz" if column.endswith("_at") else "text"


def _write_query() -> str:
    columns = ", ".join(COLUMNS)
    arrays = ", ".join(f"%s::{_array_type(column)}[]" for column in COLUMNS)
    updates = ",\n    ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "request_id")
    return f"""
INSERT INTO {{email_status}} ({columns})
SELECT * FROM unnest({arrays})
ON CONFLICT (request_id) DO UPDATE SET
    {updates}
"""


_WRITE = _write_query()


class EmailStatusProjection:
    name = "email_status"
    tables = ("email_status",)

    async def apply(
        self, conn: Connection, events: Sequence[StoredEvent], tables: Tables
    ) -> None:
        request_ids = {rid for stored in events if (rid := request_id_of(stored.event))}
        rows = await _load(conn, tables, request_ids)
        changed: dict[str, EmailRow] = {}
        for stored in events:
            request_id = request_id_of(stored.event)
            if request_id is None:
                continue
            row = fold(rows.get(request_id), request_id, stored)
            if row is not None:
                rows[request_id] = changed[request_id] = row
        await _write(conn, tables, list(changed.values()))


async def _load(conn: Connection, tables: Tables, request_ids: set[str]) -> dict[str, EmailRow]:
    if not request_ids:
        return {}
    cursor = await conn.execute(tables.query(_LOAD), (list(request_ids),))
    return {str(row[0]): EmailRow(*row) for row in await cursor.fetchall()}  # type: ignore[arg-type]


async def _write(conn: Connection, tables: Tables, rows: list[EmailRow]) -> None:
    if not rows:
        return
    arrays = [[getattr(row, column) for row in rows] for column in COLUMNS]
    await conn.execute(tables.query(_WRITE), arrays)
