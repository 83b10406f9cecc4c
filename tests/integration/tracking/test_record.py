"""Recording opens, clicks and unsubscribes, and marking what two sources both reported."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from service.db.pool import Pool
from service.events.store import read_stream
from service.events.types import EmailClicked, EmailOpened, EmailUnsubscribed
from service.suppression import is_suppressed
from service.tracking.record import (
    DUPLICATE_WINDOW_SECONDS,
    MAX_USER_AGENT_LENGTH,
    Hit,
    record_click,
    record_open,
    record_opens,
    record_unsubscribe,
)
from tests.integration.tracking.helpers import insert_sent_email

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"


async def _events(pool: Pool, request_id: str, kind: type) -> list[object]:
    async with pool.connection() as conn:
        stored = await read_stream(conn, request_id)
    return [item.event for item in stored if isinstance(item.event, kind)]


async def _sent_email(pool: Pool, **kwargs: object) -> str:
    async with pool.connection() as conn, conn.transaction():
        return await insert_sent_email(conn, **kwargs)  # type: ignore[arg-type]


async def test_open_recorded_with_topic_and_agent(pool: Pool) -> None:
    """An open carries the email's topic, the agent and its classification."""
    request_id = await _sent_email(pool, topic_id="spring-sale")
    async with pool.connection() as conn, conn.transaction():
        await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
        )
    (opened,) = await _events(pool, request_id, EmailOpened)
    assert isinstance(opened, EmailOpened)
    assert opened.topic_id == "spring-sale"
    assert opened.user_agent == CHROME
    assert opened.machine is False
    assert opened.source == "pixel"
    assert opened.duplicate is False


async def test_open_right_after_send_is_machine(pool: Pool) -> None:
    """An open a moment after SES accepted the email is a prefetch."""
    request_id = await _sent_email(pool, sent_at=T0)
    async with pool.connection() as conn, conn.transaction():
        opened = await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME,
            occurred_at=T0 + timedelta(milliseconds=500),
        )
    assert opened.machine is True
    assert opened.proxy == "prefetch"


async def test_ses_open_after_pixel_is_duplicate(pool: Pool) -> None:
    """SES reporting the open the pixel already recorded is marked duplicate."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        pixel = await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
        )
    async with pool.connection() as conn, conn.transaction():
        ses = await record_open(
            conn, request_id=request_id, source="ses", user_agent=CHROME,
            occurred_at=T0 + timedelta(seconds=2),
        )
    assert pixel.duplicate is False
    assert ses.duplicate is True


async def test_pixel_after_ses_open_is_duplicate(pool: Pool) -> None:
    """The detection works in either order, SES's timestamp being earlier or later."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        ses = await record_open(
            conn, request_id=request_id, source="ses", user_agent=CHROME, occurred_at=T0
        )
        pixel = await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME,
            occurred_at=T0 - timedelta(seconds=5),
        )
    assert ses.duplicate is False
    assert pixel.duplicate is True


async def test_same_source_opens_are_not_duplicates(pool: Pool) -> None:
    """Two pixel opens are two opens, however close together."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        first = await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
        )
        second = await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
        )
    assert first.duplicate is False
    assert second.duplicate is False


async def test_open_outside_window_is_not_duplicate(pool: Pool) -> None:
    """An SES open well after the pixel open is a second open."""
    request_id = await _sent_email(pool)
    later = T0 + timedelta(seconds=DUPLICATE_WINDOW_SECONDS + 1)
    async with pool.connection() as conn, conn.transaction():
        await record_open(
            conn, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
        )
        ses = await record_open(
            conn, request_id=request_id, source="ses", user_agent=CHROME, occurred_at=later
        )
    assert ses.duplicate is False


async def test_duplicate_matches_only_counted_events(pool: Pool) -> None:
    """Two real opens, each reported twice, count as two."""
    request_id = await _sent_email(pool)
    results = []
    async with pool.connection() as conn, conn.transaction():
        for source, seconds in (("pixel", 0), ("ses", 1), ("pixel", 30), ("ses", 31)):
            results.append(
                await record_open(
                    conn, request_id=request_id, source=source,  # type: ignore[arg-type]
                    user_agent=CHROME, occurred_at=T0 + timedelta(seconds=seconds),
                )
            )
    assert [event.duplicate for event in results] == [False, True, False, True]


async def test_open_for_other_request_is_not_duplicate(pool: Pool) -> None:
    """An SES open of another email does not match this email's pixel open."""
    first = await _sent_email(pool)
    second = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        await record_open(conn, request_id=first, source="pixel", user_agent=CHROME, occurred_at=T0)
        ses = await record_open(
            conn, request_id=second, source="ses", user_agent=CHROME, occurred_at=T0
        )
    assert ses.duplicate is False


async def test_concurrent_sources_mark_one_duplicate(pool: Pool, database_url: str) -> None:
    """Two sources recording at the same moment: the second waits and is marked duplicate."""
    request_id = await _sent_email(pool)
    async with (
        await psycopg.AsyncConnection.connect(database_url) as first,
        await psycopg.AsyncConnection.connect(database_url) as second,
    ):
        async with first.transaction():
            pixel = await record_open(
                first, request_id=request_id, source="pixel", user_agent=CHROME, occurred_at=T0
            )

            async def ses_open() -> EmailOpened:
                async with second.transaction():
                    return await record_open(
                        second, request_id=request_id, source="ses", user_agent=CHROME,
                        occurred_at=T0,
                    )

            waiting = asyncio.create_task(ses_open())
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the second recording must wait for the first"
        ses = await waiting
    assert pixel.duplicate is False
    assert ses.duplicate is True


async def test_click_duplicate_needs_same_link(pool: Pool) -> None:
    """An SES click is a duplicate only of a tracked click on the same link."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        link_a = await record_click(
            conn, request_id=request_id, link="https://example.com/a", source="link",
            user_agent=CHROME, occurred_at=T0,
        )
        ses_b = await record_click(
            conn, request_id=request_id, link="https://example.com/b", source="ses",
            user_agent=CHROME, occurred_at=T0,
        )
        ses_a = await record_click(
            conn, request_id=request_id, link="https://example.com/a", source="ses",
            user_agent=CHROME, occurred_at=T0 + timedelta(seconds=1),
        )
    assert link_a.duplicate is False
    assert ses_b.duplicate is False
    assert ses_a.duplicate is True
    clicks = await _events(pool, request_id, EmailClicked)
    assert [c.link for c in clicks] == [  # type: ignore[attr-defined]
        "https://example.com/a", "https://example.com/b", "https://example.com/a"
    ]


async def test_open_does_not_match_click(pool: Pool) -> None:
    """Opens and clicks are compared only with their own kind."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        await record_click(
            conn, request_id=request_id, link="https://example.com/a", source="link",
            user_agent=CHROME, occurred_at=T0,
        )
        opened = await record_open(
            conn, request_id=request_id, source="ses", user_agent=CHROME, occurred_at=T0
        )
    assert opened.duplicate is False


async def test_unsubscribe_suppresses_once(pool: Pool) -> None:
    """Unsubscribing twice records one event and one suppression."""
    request_id = await _sent_email(pool, recipient="Reader@Example.COM")
    async with pool.connection() as conn, conn.transaction():
        first = await record_unsubscribe(conn, request_id=request_id, source="one_click")
    async with pool.connection() as conn, conn.transaction():
        again = await record_unsubscribe(conn, request_id=request_id, source="link")
    assert first is not None
    assert again is not None
    events = await _events(pool, request_id, EmailUnsubscribed)
    assert len(events) == 1
    async with pool.connection() as conn:
        assert await is_suppressed(conn, "Reader@example.com")
        cursor = await conn.execute("SELECT address, reason, request_id::text FROM suppressions")
        rows = await cursor.fetchall()
    assert rows == [("Reader@example.com", "unsubscribe", request_id)]


async def test_unsubscribe_unknown_request(pool: Pool) -> None:
    """An unknown request id records nothing."""
    async with pool.connection() as conn, conn.transaction():
        result = await record_unsubscribe(
            conn, request_id="00000000-0000-4000-8000-000000000000", source="link"
        )
        cursor = await conn.execute("SELECT count(*) FROM events")
        count = await cursor.fetchone()
    assert result is None
    assert count == (0,)


async def test_batch_marks_only_matching_duplicates(pool: Pool) -> None:
    """In one batch, only the hit whose email SES already reported is a duplicate."""
    reported, other = await _sent_email(pool), await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        await record_open(
            conn, request_id=reported, source="ses", user_agent=CHROME, occurred_at=T0
        )
        events = await record_opens(
            conn,
            "pixel",
            [Hit(reported, CHROME, T0), Hit(other, CHROME, T0), Hit(reported.upper(), None, T0)],
        )
    assert [e.duplicate for e in events] == [True, False, True]
    assert [e.request_id for e in events] == [reported, other, reported]
    assert events[2].machine is True


async def test_long_user_agent_is_cut(pool: Pool) -> None:
    """A user agent longer than the limit is stored cut to the limit."""
    request_id = await _sent_email(pool)
    async with pool.connection() as conn, conn.transaction():
        opened = await record_open(
            conn, request_id=request_id, source="pixel", user_agent="x" * 100_000, occurred_at=T0
        )
    assert opened.user_agent == "x" * MAX_USER_AGENT_LENGTH
