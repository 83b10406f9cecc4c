"""The state shared by request handlers: settings and the database pool."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from litestar.datastructures import State

from service.config import Settings
from service.db.pool import Pool


@dataclass
class AppContext:
    settings: Settings
    pool: Pool


def context_of(state: State) -> AppContext:
    context: AppContext = state.context
    return context


def request_context(request: Request[object, object, State]) -> AppContext:
    return context_of(request.app.state)
