"""Several `ses-sender dispatch` processes against one database and a stub SES on 127.0.0.1.

These start the real command line, so they take the time real sending takes (the rate test
needs about 15 seconds by construction).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from service.config import Settings
from service.db.pool import Pool
from tests.support.dispatching import statuses, wait_until_settled
from tests.support.enqueue import enqueue
from tests.support.processes import (
    dispatcher_env,
    kill_dispatcher,
    start_dispatcher,
    stop_dispatcher,
)
from tests.support.ses_stub import StubSes, max_in_any_window, wait_for_calls
from tests.support.stub_process import stub_process

pytestmark = pytest.mark.acceptance


@pytest.fixture
def stub() -> Iterator[StubSes]:
    started = StubSes().start()
    try:
        yield started
    finally:
        started.stop()


async def test_three_dispatchers_share_the_rate(
    tmp_path: Path, database_url: str, pool: Pool, settings: Settings
) -> None:
    """Three processes, EMAIL_RATE=20, a backlog of 300: no second over 20, none sent twice."""
    recipients = [f"user{i}@example.com" for i in range(300)]
    request_ids: list[str] = []
    for chunk in range(0, 300, 100):
        request_ids += await enqueue(pool, settings, recipients[chunk : chunk + 100])
    with stub_process(tmp_path / "calls.jsonl") as (url, calls):
        env = dispatcher_env(tmp_path, database_url, url, EMAIL_RATE="20")
        processes = [start_dispatcher(env, tmp_path / f"dispatcher{i}.log") for i in range(3)]
        try:
            final = await wait_until_settled(pool, request_ids, seconds=60)
        finally:
            codes = [stop_dispatcher(p) for p in processes]
    assert codes == [0, 0, 0]
    assert {final[r] for r in request_ids} == {"sent"}
    assert Counter(call["to"] for call in calls) == Counter(recipients)
    # When each request left, as its dispatcher logged it: "sends started" is what the
    # limit is about. Arrival times at the stub add the stub's own scheduling delay, which
    # on a loaded machine reaches the 15 ms margin, so they are checked in the benchmark.
    started = {i: sent_times(tmp_path / f"dispatcher{i}.log") for i in range(3)}
    times = [at for per_process in started.values() for at in per_process]
    assert len(times) == 300
    assert max_in_any_window(times) <= 20
    # 300 sends at 20 per second need 299 / 20 = 14.95 s from the first to the last. The
    # bound is loose because a loaded machine makes sends miss their slots (and the time is
    # measured in bench/dispatch.py); it catches a limiter that serialises or stalls.
    span = max(times) - min(times)
    assert span < 14.95 * 2.5, span
    assert all(started.values()), "every process took part"


def sent_times(log_path: Path) -> list[float]:
    """Return the start times (epoch seconds) of the sends an email_sent line reports."""
    times = []
    for line in log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "email_sent":
            times.append(datetime.fromisoformat(entry["started_at"]).timestamp())
    return times


async def test_killed_dispatcher_loses_nothing(
    tmp_path: Path, database_url: str, pool: Pool, settings: Settings, stub: StubSes
) -> None:
    """SIGKILL mid-batch, then another dispatcher: all end sent or uncertain, none sent twice."""
    stub.delay = 0.3
    request_ids = await enqueue(pool, settings, [f"u{i}@example.com" for i in range(60)])
    env = dispatcher_env(
        tmp_path, database_url, stub.url, EMAIL_RATE="40", DISPATCH_LEASE_SECONDS="3"
    )
    first = start_dispatcher(env, tmp_path / "first.log")
    await wait_for_calls(stub, 15)
    kill_dispatcher(first)
    at_kill = Counter((await statuses(pool)).values())
    assert at_kill["sending"] > 0, at_kill

    second = start_dispatcher(env, tmp_path / "second.log")
    try:
        final = await wait_until_settled(pool, request_ids, seconds=60)
    finally:
        assert stop_dispatcher(second) == 0
    outcomes = Counter(final[r] for r in request_ids)
    assert set(outcomes) <= {"sent", "uncertain"}
    assert outcomes["uncertain"] > 0
    per_recipient = Counter(call.body["Destination"]["ToAddresses"][0] for call in stub.calls)
    assert max(per_recipient.values()) == 1
    assert len(per_recipient) >= outcomes["sent"]
    second_log = (tmp_path / "second.log").read_text()
    assert '"email_send_uncertain"' in second_log


async def test_database_connections_cut(
    tmp_path: Path, database_url: str, pool: Pool, settings: Settings, stub: StubSes
) -> None:
    """Every database connection is terminated mid-run; the dispatchers reconnect and finish.

    pg_terminate_backend cuts the dispatchers' pooled and LISTEN connections as a database
    restart would, without stopping the shared test server.
    """
    request_ids = await enqueue(pool, settings, [f"u{i}@example.com" for i in range(150)])
    env = dispatcher_env(
        tmp_path, database_url, stub.url, EMAIL_RATE="50", DISPATCH_LEASE_SECONDS="5"
    )
    processes = [start_dispatcher(env, tmp_path / f"d{i}.log") for i in range(2)]
    try:
        await wait_for_calls(stub, 40)
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
        assert row is not None
        # At least each dispatcher's LISTEN connection.
        assert row[0] >= 2
        final = await wait_until_settled(pool, request_ids, seconds=60)
    finally:
        codes = [stop_dispatcher(p) for p in processes]
    assert codes == [0, 0]
    outcomes = Counter(final[r] for r in request_ids)
    assert set(outcomes) <= {"sent", "uncertain"}
    assert outcomes["sent"] >= 140
    per_recipient = Counter(call.body["Destination"]["ToAddresses"][0] for call in stub.calls)
    assert max(per_recipient.values()) == 1
    assert len(per_recipient) == 150
