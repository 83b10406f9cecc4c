"""Message bodies for claimed emails, read from their MessageSubmitted events and cached."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from psycopg import AsyncConnection

from service.events.types import MessageSubmitted, decode

CACHE_SIZE = 256


class MessageCache:
    """The most recently used message bodies by event position; a stored body never changes."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._messages: OrderedDict[int, MessageSubmitted] = OrderedDict()

    async def load(
        self, conn: AsyncConnection[tuple[object, ...]], positions: Iterable[int]
    ) -> dict[int, MessageSubmitted]:
        """Return the messages at `positions`, reading the missing ones in one query."""
        wanted = set(positions)
        missing = [p for p in wanted if p not in self._messages]
        if missing:
            async with conn.transaction():
                cursor = await conn.execute(
                    "SELECT position, type, data::text FROM events WHERE position = ANY(%s)",
                    (missing,),
                )
                rows = await cursor.fetchall()
            for position, type_name, data in rows:
                event = decode(str(type_name), str(data))
                if isinstance(event, MessageSubmitted):
                    self._messages[int(position)] = event  # type: ignore[call-overload]
        found = {p: self._messages[p] for p in wanted if p in self._messages}
        for position in found:
            self._messages.move_to_end(position)
        while len(self._messages) > self._size:
            self._messages.popitem(last=False)
        return found
