"""Keep-alive HTTP/1.1 connections to the SES endpoint, one per sending thread.

urllib3 (under botocore's HTTP session) spends about as much CPU on its pool, retries and
response wrappers as the standard library's `http.client` spends on the request itself.
A dispatcher sends one kind of request to one host from a fixed set of threads, so each
thread keeps its own connection and nothing is shared. Requests through a proxy do not come
here: SesSender sends those with botocore's session, which handles proxies.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from botocore.httpsession import get_cert_path


class DirectHttpError(Exception):
    """A request that got no response. `code` names the failure as botocore does."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class DirectHttp:
    def __init__(
        self, url: str, *, verify: bool | str, connect_timeout: float, read_timeout: float
    ) -> None:
        parts = urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"invalid SES endpoint URL {url!r}: it has no host")
        self._url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if parts.port == (443 if self._https else 80):
            netloc = netloc.rsplit(":", 1)[0]
        self.host_header = netloc
        """The Host header, as botocore's signer writes it: no port when it is the default."""
        self._context: ssl.SSLContext | None = None
        if self._https:
            if verify is False:
                self._context = ssl._create_unverified_context()  # noqa: S323 - as botocore's verify=False
            else:
                self._context = ssl.create_default_context(cafile=get_cert_path(verify))
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()

    def post(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        """POST `body` to `path`; return the status, the response (for its headers) and body."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
        try:
            # http.client sends the headers and a bytes body in one write.
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = response.read()
        except TimeoutError as error:
            self._drop(connection)
            raise DirectHttpError(
                "ReadTimeoutError", f"no response from {self._url} in {self._read_timeout} s"
            ) from error
        except (OSError, http.client.HTTPException) as error:
            self._drop(connection)
            raise DirectHttpError(
                "ConnectionClosedError", f"connection to {self._url} failed: {error!r}"
            ) from error
        if response.will_close:
            self._drop(connection)
        return response.status, response, content

    def close(self) -> None:
        """Close every thread's connection; call it once no thread sends any more."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._connect_timeout
            )
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise DirectHttpError(
                "EndpointConnectionError", f"could not connect to {self._url}: {error}"
            ) from error
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(self._read_timeout)
        self._local.connection = connection
        with self._lock:
            self._open.add(connection)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            self._open.discard(connection)
