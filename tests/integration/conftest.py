"""Fixtures for tests that send: a stub SES endpoint and settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from tests.conftest import make_settings
from tests.support.ses_stub import StubSes


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, so boto3 signs requests to the local endpoints without looking further."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def ses_stub(aws_credentials: None) -> Iterator[StubSes]:
    stub = StubSes().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def send_settings(tmp_path: Path, database_url: str, ses_stub: StubSes) -> Settings:
    return make_settings(tmp_path, database_url, ses_endpoint_url=ses_stub.url, email_rate=200.0)
