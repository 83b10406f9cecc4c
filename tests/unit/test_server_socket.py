"""The API's listening socket."""

from __future__ import annotations

import socket

from service.server import _listen


def test_listener_is_tcp_for_nodelay() -> None:
    """The listener's proto is TCP, so the event loop turns on TCP_NODELAY for connections."""
    listener = _listen("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        assert accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        client.close()
    finally:
        listener.close()
