"""A /metrics listener for processes that serve no API, such as `dispatch` and `project`.

The API process exposes its metrics at `GET /metrics` on SERVER_PORT. A dispatcher or projector
records into the same registry in its own process, so it needs a listener of its own to be
scraped: this one, on METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import functools

from prometheus_client import start_http_server

from service.config import Settings
from service.logging import get_logger
from service.metrics import REGISTRY
from service.runtime import Component

log = get_logger(__name__)


async def serve_metrics(host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the registry on `host`:`port` (any path) until `stop` is set."""
    try:
        server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as error:
        raise OSError(
            f"cannot listen for metrics on {host}:{port} ({error.strerror}); "
            f"set METRICS_PORT to a free port"
        ) from None
    log.info("metrics_listening", host=host, port=port)
    try:
        await stop.wait()
    finally:
        # shutdown() waits for serve_forever() to return, so it runs off the event loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=5)
        log.info("metrics_stopped")


def metrics_listener(settings: Settings) -> dict[str, Component]:
    """Return the /metrics listener as a component when METRICS_PORT is set, otherwise none.

    It listens on all interfaces, as the API does, so that Prometheus on another host can
    scrape it.
    """
    if settings.metrics_port is None:
        return {}
    all_interfaces = "0.0.0.0"  # noqa: S104 - a scrape target listens on all interfaces
    return {"metrics": functools.partial(serve_metrics, all_interfaces, settings.metrics_port)}
