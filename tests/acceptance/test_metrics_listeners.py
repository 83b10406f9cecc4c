"""`dispatch` and `project` serve their metrics on METRICS_PORT, to be scraped."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from service.local.ses import EMULATOR_CREDENTIALS, ses_emulator
from tests.acceptance.service import clean_environment, cli_command, free_port

pytestmark = pytest.mark.acceptance

# One metric each process records into its own registry.
EXPECTED = {
    "dispatch": "ses_sender_due_queue_depth",
    "project": "ses_sender_projection_lag_events",
}


def scrape(process: subprocess.Popen[bytes], port: int, log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        assert response.status_code == 200
        return response.text
    raise AssertionError(f"no metrics on port {port}:\n{log.read_text()}")


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_metrics_port(command: str, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "output.log"
    with ses_emulator("us-east-1", "news@example.com") as endpoint:
        env = clean_environment(
            tmp_path,
            {
                "DATABASE_URL": database_url,
                "DATA_DIR": str(tmp_path / "data"),
                "METRICS_PORT": str(port),
                "EMAIL_SENDER": "news@example.com",
                "SES_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
            },
        )
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*cli_command(), command], env=env, cwd=tmp_path, stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            text = scrape(process, port, log)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
    assert f"# TYPE {EXPECTED[command]} gauge" in text
    assert code == 0, log.read_text()
    assert "metrics_listening" in log.read_text()
