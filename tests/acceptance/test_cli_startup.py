"""The CLI as a user meets it: help, and one clear line for a bad setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "service.cli"]


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [*COMMAND, *args], env={**base, **env}, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    """--help names each command with one line."""
    result = run_cli(["--help"], {"DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    for command in ("run", "serve", "migrate", "db"):
        assert f"\n  {command} " in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SERVER_PORT", "abc", "SERVER_PORT='abc' is invalid"),
        ("EMAIL_RATE", "-1", "EMAIL_RATE='-1' is invalid"),
        ("DATABASE_URL", "mysql://u:pw@h/d", "DATABASE_URL=(hidden) is invalid"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL='chatty' is invalid"),
    ],
)
def test_bad_setting_is_one_line(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    """A bad value stops startup with exit code 2 and one line, not a traceback."""
    result = run_cli(["serve"], {"DATA_DIR": str(tmp_path), variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ses-sender: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """A database that refuses connections is reported without a traceback."""
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u@127.0.0.1:9/none"}
    result = run_cli(["migrate"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ses-sender: error: migration failed" in result.stderr
