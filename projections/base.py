"""The projection interface: a name, the tables it owns, and how it applies a batch of events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from psycopg import AsyncConnection, sql

from service.events.store import StoredEvent

Connection = AsyncConnection[tuple[object, ...]]


class Tables:
    """The table names a projection writes to: its live tables, or a rebuild's shadow copies.

    Queries name tables as `{topic_stats}` placeholders; `query` fills them in as quoted
    identifiers.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)

    @classmethod
    def live(cls, tables: Sequence[str]) -> Tables:
        return cls({table: table for table in tables})

    @classmethod
    def shadow(cls, tables: Sequence[str]) -> Tables:
        return cls({table: f"{table}__rebuild" for table in tables})

    def query(self, template: str) -> sql.Composed:
        identifiers = {logical: sql.Identifier(actual) for logical, actual in self.names.items()}
        return sql.SQL(template).format(**identifiers)


class Projection(Protocol):
    """A read model kept up to date from the log."""

    @property
    def name(self) -> str:
        """The stable name operators use on the command line and in the checkpoint table."""

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the projection writes, the analysts' ones and its private ones."""

    async def apply(
        self, conn: Connection, events: Sequence[StoredEvent], tables: Tables
    ) -> None:
        """Apply `events`, in the order given, inside the caller's transaction."""
