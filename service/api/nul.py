"""Rejecting NUL characters in query and path parameters before any handler runs.

PostgreSQL text cannot hold a NUL character, so a value carrying one (`%00` in the URL) would
fail in the database and surface as a 500. Every parameter is checked here instead, and the
client gets a 400 naming it.
"""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State

from service.api.errors import ApiError


async def reject_nul_parameters(request: Request[object, object, State]) -> None:
    """Raise a 400 naming the first query or path parameter that contains a NUL character."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(400, f"{name} contains a NUL character (%00); remove it.", name)
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            raise ApiError(400, f"{name} contains a NUL character (%00); remove it.", name)


async def accept_any_parameters(request: Request[object, object, State]) -> None:
    """For handlers that check their own parameters in Python and never pass them to SQL."""
