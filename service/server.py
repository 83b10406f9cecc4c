"""Serving the Litestar app with uvicorn as one component of a process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from service.api.app import create_app
from service.api.context import AppContext
from service.logging import get_logger

log = get_logger(__name__)


class _Server(uvicorn.Server):
    # run_components owns the signal handlers; uvicorn's own would swallow SIGTERM.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(context: AppContext, host: str, stop: asyncio.Event) -> None:
    """Serve HTTP on `host` and SERVER_PORT until `stop` is set, then drain and return."""
    port = context.settings.server_port
    config = uvicorn.Config(
        create_app(context),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    listener = _listen(host, port)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if serving in done:
        stopping.cancel()
        serving.result()
        return
    server.should_exit = True
    await serving
    log.info("api_stopped")


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a port in use is a clear error and not an exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP must be given: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # is TCP, and without it Nagle plus delayed ACKs stall each response by about 40 ms.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({error.strerror}); stop the other process "
            f"or set SERVER_PORT to a free port"
        ) from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener
