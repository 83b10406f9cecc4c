"""The projector and the projection commands as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from service.cli import main
from service.events.store import append
from tests.integration.projection_history import (
    expected_topic_stats,
    interleave,
    make_history,
)

pytestmark = pytest.mark.acceptance


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
        "PROJECTION_POLL_SECONDS": "0.5",
    }


def append_history(database_url: str, seed: int, emails: int) -> int:
    history = make_history(seed, emails=emails)
    events = interleave(history)

    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            for start in range(0, len(events), 50):
                async with conn.transaction():
                    await append(conn, events[start : start + 50])

    asyncio.run(write())
    return len(events)


def topic_requested(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT topic_id, requested FROM topic_stats").fetchall()
    return dict(rows)


def lag(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum((SELECT count(*) FROM events e WHERE (e.xact_id, e.position) "
            "> (c.xact_id, c.position))), 0) FROM projection_checkpoints c"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def projectors(database_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two `ses-sender project` processes against the same database."""
    env = os.environ | environment(database_url, tmp_path)
    processes = []
    for index in range(2):
        with (tmp_path / f"projector-{index}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [str(Path(sys.executable).parent / "ses-sender"), "project"],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_two_projector_processes(
    projectors: list[subprocess.Popen[bytes]], database_url: str, tmp_path: Path
) -> None:
    """Two projector processes count each event once and stop cleanly on SIGTERM."""
    deadline = time.monotonic() + 60
    logs = [tmp_path / f"projector-{index}.log" for index in range(len(projectors))]
    # Both are running (and handle SIGTERM) before the events arrive.
    while not all("projector_started" in log.read_text() for log in logs):
        assert time.monotonic() < deadline, "projectors did not start"
        time.sleep(0.1)
    append_history(database_url, seed=21, emails=300)
    while lag(database_url) > 0:
        assert time.monotonic() < deadline, "projectors did not catch up"
        time.sleep(0.1)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT position, type, data, occurred_at FROM events ORDER BY xact_id, position"
        ).fetchall()
    expected = expected_topic_stats(rows)  # type: ignore[arg-type]
    assert topic_requested(database_url) == {
        topic: counts["requested"] for topic, counts in expected.items()
    }

    for process in projectors:
        process.send_signal(signal.SIGTERM)
    for process, log in zip(projectors, logs, strict=True):
        assert process.wait(timeout=30) == 0
        assert "projector_stopped" in log.read_text()


def test_status_and_rebuild_commands(database_url: str, tmp_path: Path) -> None:
    """status reports the lag; rebuild replays it to zero; status then reports none."""
    total = append_history(database_url, seed=22, emails=60)
    runner = CliRunner()
    env = environment(database_url, tmp_path)

    before = runner.invoke(main, ["projections", "status", "--json"], env=env)
    assert before.exit_code == 0, before.output
    status = json.loads(before.output)
    assert status["head"]["position"] == total
    assert {p["projection"]: p["lag_events"] for p in status["projections"]} == {
        "topic_stats": total, "hourly_counts": total, "email_status": total,
    }

    rebuilt = runner.invoke(main, ["projections", "rebuild", "--batch-size", "100"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"topic_stats: {total} events applied" in rebuilt.output

    after = json.loads(runner.invoke(main, ["projections", "status", "--json"], env=env).output)
    assert [p["lag_events"] for p in after["projections"]] == [0, 0, 0]
    assert sum(topic_requested(database_url).values()) == 60


def test_rebuild_unknown_name(database_url: str, tmp_path: Path) -> None:
    """An unknown projection name is rejected with the list of valid ones."""
    result = CliRunner().invoke(
        main, ["projections", "rebuild", "topic_stat"], env=environment(database_url, tmp_path)
    )
    assert result.exit_code == 2
    assert "unknown projection 'topic_stat'" in result.output
    assert "topic_stats, hourly_counts, email_status" in result.output
