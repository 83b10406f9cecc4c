"""The `email_status` read model: per email, its current status and milestone times."""

from __future__ import annotations

import operator
from collections.abc import Sequence

from psycopg import sql

from projections.base import Connection, Tables
from projections.email_row import COLUMNS, EmailRow, fold
from projections.fields import request_id_of
from projections.staging import copy_upsert
from service.events.store import StoredEvent

_LOAD = f"SELECT {', '.join(COLUMNS)} FROM {{email_status}} WHERE request_id = ANY(%s)"

# Every column but the key is replaced: the row was computed from the stored one.
_ON_CONFLICT = sql.SQL("ON CONFLICT (request_id) DO UPDATE SET {}").format(
    sql.SQL(", ").join(
        sql.SQL("{column} = EXCLUDED.{column}").format(column=sql.Identifier(column))
        for column in COLUMNS
        if column != "request_id"
    )
)


_row_values = operator.attrgetter(*COLUMNS)


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
    values = map(_row_values, rows)
    await copy_upsert(conn, tables.names["email_status"], COLUMNS, values, _ON_CONFLICT)
