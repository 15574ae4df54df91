"""Structured JSON logs on stdout: one object per line, easy for Loki or any shipper."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

# Libraries whose debug (or, for httpx, info) records carry what must never be logged: SQL
# parameters (token hashes, channel secrets) and request URLs (a Slack webhook URL is a
# secret). They log warnings and errors only, whatever LOG_LEVEL says.
QUIETED = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "httpx", "httpcore")


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON, at `level` and above."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our access log replaces uvicorn's; keep uvicorn's own messages, through our handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for name in QUIETED:
        logging.getLogger(name).setLevel(logging.WARNING)
