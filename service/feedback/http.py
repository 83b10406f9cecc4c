"""Small outbound HTTPS GETs for SNS: the signing certificate and the subscription URL.

Redirects are never followed, because the host rule only vouches for the URL as given.
The blocking urllib call runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: bytes


HttpGet = Callable[[str], Awaitable[HttpResult]]
"""An HTTP GET: takes a URL and returns the status and body; raises OSError when it fails."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # Returning None makes urllib report the 3xx as an HTTPError instead of following it.
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _get(url: str, timeout: float, max_bytes: int) -> HttpResult:
    try:
        response: IO[bytes] = _OPENER.open(url, timeout=timeout)
        with response:
            return HttpResult(getattr(response, "status", 200), response.read(max_bytes + 1))
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, b"")


def https_getter(timeout: float, max_bytes: int = 65_536) -> HttpGet:
    """Return an HttpGet with `timeout` seconds per attempt and a body limit of `max_bytes`."""

    async def get(url: str) -> HttpResult:
        return await asyncio.to_thread(_get, url, timeout, max_bytes)

    return get
