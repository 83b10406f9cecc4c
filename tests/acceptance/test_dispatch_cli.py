"""The sending commands as an operator meets them: startup checks and `uncertain`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import Settings
from service.db.pool import Pool
from service.dispatch import queue
from tests.support.enqueue import enqueue

pytestmark = pytest.mark.acceptance

COMMAND = [sys.executable, "-m", "service.cli"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        # Keep boto3's credential chain off the instance metadata address.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    return subprocess.run(
        [*COMMAND, *args], env={**base, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["dispatch", "run"])
def test_missing_sender_is_one_line(tmp_path: Path, command: str) -> None:
    """Without EMAIL_SENDER, dispatch and run stop with one line naming it and the fix."""
    env = {"DATA_DIR": str(tmp_path), "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    result = run_cli([command], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "EMAIL_SENDER is missing" in lines[0]
    assert "--local" in lines[0]


@pytest.mark.parametrize("command", ["dispatch", "run"])
def test_missing_credentials_is_one_line(tmp_path: Path, command: str) -> None:
    """Without AWS credentials, dispatch and run stop with one line naming the variables."""
    result = run_cli([command], {"DATA_DIR": str(tmp_path), "EMAIL_SENDER": "s@example.com"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "AWS credentials are missing" in lines[0]
    assert "AWS_ACCESS_KEY_ID" in lines[0]


async def test_uncertain_list_and_resend(
    tmp_path: Path, database_url: str, pool: Pool, settings: Settings
) -> None:
    """`uncertain list` shows uncertain emails; `uncertain resend` queues the ones named."""
    request_ids = await enqueue(pool, settings, ["a@example.com", "b@example.com"])
    async with pool.connection() as conn:
        await queue.claim(conn, "dead", 10)
        await conn.execute("UPDATE emails SET due_at = now() - interval '1 second'")
        await queue.expire_leases(conn)
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": database_url}

    listed = run_cli(["uncertain", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == sorted(
        request_ids
    )

    resent = run_cli(["uncertain", "resend", request_ids[0]], env)
    assert resent.returncode == 0, resent.stderr
    assert resent.stdout.split() == [request_ids[0]]

    rest = run_cli(["uncertain", "resend", "--all"], env)
    assert rest.stdout.split() == [request_ids[1]]

    both = run_cli(["uncertain", "resend", "--all", request_ids[0]], env)
    assert both.returncode == 2
    assert "not both" in both.stderr

    bad = run_cli(["uncertain", "resend", "not-a-uuid"], env)
    assert bad.returncode == 2
    assert "invalid request id 'not-a-uuid'" in bad.stderr
