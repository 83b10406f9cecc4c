"""Logging and error reporting setup."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sentry_sdk
import structlog

from service.config import load_settings
from service.logging import configure_logging, get_logger
from service.sentry import init_sentry


def test_json_lines_carry_event_and_context(capsys: pytest.CaptureFixture[str]) -> None:
    """In JSON mode each line is one object with the event name and bound context."""
    configure_logging("info", "json")
    try:
        structlog.contextvars.bind_contextvars(request_id="r-1")
        get_logger("test").info("email_sent", topic_id="news")
        logging.getLogger("uvicorn.error").warning("plain stdlib line")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["event"] == "email_sent"
    assert lines[0]["request_id"] == "r-1"
    assert lines[0]["topic_id"] == "news"
    assert lines[0]["level"] == "info"
    assert lines[1]["event"] == "plain stdlib line"
    assert lines[1]["logger"] == "uvicorn.error"


def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    """Lines below LOG_LEVEL are dropped."""
    configure_logging("warning", "json")
    get_logger("test").info("hidden")
    get_logger("test").warning("shown")
    output = capsys.readouterr().err
    assert "hidden" not in output
    assert "shown" in output


def test_sentry_off_without_dsn(tmp_path: Path) -> None:
    """Without SENTRY_DSN no client is started."""
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)
    assert init_sentry(settings, "test") is False


def test_sentry_on_with_dsn(tmp_path: Path) -> None:
    """With SENTRY_DSN a client is started (nothing is sent unless an error is captured)."""
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "SENTRY_DSN": "http://public@127.0.0.1:9/1"}, env_file=None
    )
    try:
        assert init_sentry(settings, "test") is True
        client = sentry_sdk.get_client()
        assert client.is_active()
    finally:
        sentry_sdk.get_client().close(timeout=0)
        sentry_sdk.init()
