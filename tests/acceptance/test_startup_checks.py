"""Startup failures of the real CLI: one line naming the missing setting and the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.acceptance.service import clean_environment, cli_command, free_port

pytestmark = pytest.mark.acceptance


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_environment(
        tmp_path, {"DATA_DIR": str(tmp_path / "data"), "SERVER_PORT": str(free_port()), **env}
    )
    return subprocess.run(
        [*cli_command(), *args],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ses-sender: error:")]


def test_run_without_sender(tmp_path: Path) -> None:
    """`run` without EMAIL_SENDER stops at once with one line naming it and --local."""
    result = run_cli(tmp_path, "run")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "EMAIL_SENDER is missing" in lines[0]
    assert "--local" in lines[0]
    # Nothing was started: no embedded database was created.
    assert not (tmp_path / "data" / "postgres").exists()


def test_run_without_credentials(tmp_path: Path) -> None:
    """`run` with a sender but no AWS identity names the credentials and --local."""
    result = run_cli(tmp_path, "run", EMAIL_SENDER="mail@example.com")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "AWS credentials are missing" in lines[0]
    assert "AWS_ACCESS_KEY_ID" in lines[0]
    assert "--local" in lines[0]


def test_local_without_moto(tmp_path: Path) -> None:
    """`run --local` without moto says to install the local extra, in one line."""
    # A package named moto that fails to import stands in for a missing install.
    blocker = tmp_path / "blocker" / "moto"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named moto')\n")
    result = run_cli(tmp_path, "run", "--local", PYTHONPATH=str(tmp_path / "blocker"))
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "pip install 'ses-sender[local]'" in lines[0]
