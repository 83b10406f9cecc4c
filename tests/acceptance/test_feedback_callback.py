"""The SNS callback of a real `ses-sender serve` process, over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from service.feedback.local_signer import LocalSnsSigner, encode
from tests import ses_payloads as ses

pytestmark = pytest.mark.acceptance

TOPIC = "arn:aws:sns:us-east-1:123456789012:acceptance-feedback"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, LocalSnsSigner]]:
    signer = LocalSnsSigner.create()
    signer.install(tmp_path / "certs")
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "SERVER_PORT": str(port),
        "SNS_TOPIC_ARNS": TOPIC,
        "SNS_CERTS_DIR": str(tmp_path / "certs"),
        "API_KEY": "acceptance-api-key-0123456789",
    }
    executable = Path(sys.executable).parent / "ses-sender"
    with (tmp_path / "server.log").open("wb") as log_file:
        process = subprocess.Popen(
            [str(executable), "serve", "--bind", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).close()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.1)
        yield base, signer
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(base: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - a local test server
        f"{base}/v1/events/results",
        data=body,
        headers={"Content-Type": "text/plain; charset=UTF-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_signed_bounce_stored_and_suppressed(
    server: tuple[str, LocalSnsSigner], database_url: str
) -> None:
    base, signer = server
    message = signer.notification(TOPIC, ses.bounce("0100018c-acceptance-0001", ["hb@example.com"]))
    status, body = post(base, encode(message))
    assert status == 200, body
    assert b'"outcome":"held"' in body
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT address, reason FROM suppressions").fetchone()
    assert row == ("hb@example.com", "bounce")


def test_forged_message_rejected(server: tuple[str, LocalSnsSigner]) -> None:
    base, signer = server
    message = signer.notification(
        TOPIC, ses.delivery("0100018c-acceptance-0002", ["a@example.com"])
    )
    message["Message"] = message["Message"].replace("Delivery", "Bounce")
    status, body = post(base, encode(message))
    assert status == 403
    assert b"signature" in body
