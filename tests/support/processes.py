"""Starting `ses-sender dispatch` processes for acceptance tests, and stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

COMMAND = [sys.executable, "-m", "service.cli", "dispatch"]


def dispatcher_env(
    tmp_path: Path, database_url: str, ses_url: str, **settings: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "SES_ENDPOINT_URL": ses_url,
        "EMAIL_SENDER": "sender@example.com",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "LOG_FORMAT": "json",
    }
    env.update(settings)
    return env


def start_dispatcher(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start one dispatcher process whose output goes to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(COMMAND, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_dispatcher(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """Send SIGTERM and return the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def kill_dispatcher(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(10)
