"""structlog setup: JSON lines for machines, a readable console on a terminal.

Standard-library loggers (uvicorn, psycopg_pool, botocore) are routed through the same
processors, so every line of a process has one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from service.config import LogFormat

_SHARED_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(level: str = "info", log_format: LogFormat | None = None) -> None:
    """Configure structlog and the standard library's root logger once per process."""
    chosen = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: structlog.typing.Processor
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()
    numeric_level = logging.getLevelNamesMapping()[level.upper()]

    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if chosen == "json" else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Their INFO lines repeat what the service logs itself, one line per request or connection.
    for noisy in ("uvicorn.access", "botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))


def _keep(
    _logger: Any, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
