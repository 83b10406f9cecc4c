"""The separate /metrics listener of processes without the API."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from service.config import load_settings
from service.errors import ConfigError
from service.metrics import QUEUE_DEPTH
from service.metrics_server import serve_metrics


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_serves_registry_until_stopped() -> None:
    """The listener serves the registry, then frees its port when stopped."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_metrics("127.0.0.1", port, stop))
    QUEUE_DEPTH.set(7)
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            try:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert response.status_code == 200
        assert "ses_sender_due_queue_depth 7.0" in response.text
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/metrics")


async def test_port_in_use_named() -> None:
    """A port in use is an error naming METRICS_PORT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="METRICS_PORT"):
            await serve_metrics("127.0.0.1", port, asyncio.Event())


def test_metrics_port_setting() -> None:
    """METRICS_PORT is read as a TCP port and is unset by default."""
    assert load_settings({}, env_file=None).metrics_port is None
    assert load_settings({"METRICS_PORT": "9100"}, env_file=None).metrics_port == 9100
    with pytest.raises(ConfigError, match="METRICS_PORT='0' is invalid"):
        load_settings({"METRICS_PORT": "0"}, env_file=None)
