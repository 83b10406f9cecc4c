"""Writing many rows at once: COPY into a temporary staging table, then one upsert.

COPY is used instead of array parameters because psycopg adapts array parameters in
Python, element by element, which took most of a rebuild's time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg import sql

from projections.base import Connection


async def copy_upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    on_conflict: sql.Composable,
) -> None:
    """Insert `rows` into `table`, resolving conflicts with `on_conflict`, in the caller's
    transaction."""
    staging = sql.Identifier(f"staging_{table}")
    target = sql.Identifier(table)
    names = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    # One staging table per session and target.
    await conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {target}) ON COMMIT DELETE ROWS"
        ).format(staging=staging, target=target)
    )
    copy_statement = sql.SQL("COPY {staging} ({names}) FROM STDIN").format(
        staging=staging, names=names
    )
    async with conn.cursor().copy(copy_statement) as copy:
        for row in rows:
            await copy.write_row(row)
    await conn.execute(
        sql.SQL("INSERT INTO {target} ({names}) SELECT {names} FROM {staging} {conflict}").format(
            target=target, names=names, staging=staging, conflict=on_conflict
        )
    )
    # A transaction may write several batches (a rebuild's final catch-up does).
    await conn.execute(sql.SQL("TRUNCATE {staging}").format(staging=staging))
