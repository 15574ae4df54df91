"""Translate user-facing database URLs into SQLAlchemy async URLs.

Users write what the seed shows (`postgres://user:pass@host/db?sslmode=disable`) or
`sqlite:///path`. SQLAlchemy wants a driver name, and asyncpg spells `sslmode` as `ssl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL, ready for `create_async_engine`."""

    backend: Literal["sqlite", "postgresql"]
    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    sqlite_path: Path | None = None

    def render(self) -> str:
        """The URL with its password hidden, safe to log."""
        return self.url.render_as_string(hide_password=True)


def parse_database_url(raw: str) -> DatabaseURL:
    """Parse `raw`, raising ValueError for anything that is not SQLite or PostgreSQL."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ValueError(f"DATABASE_URL is not a valid URL: {exc}") from None

    scheme = url.drivername.split("+", 1)[0]
    if scheme == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("DATABASE_URL must name a SQLite file, e.g. sqlite:///./data/rs.db")
        return DatabaseURL(
            backend="sqlite",
            url=url.set(drivername="sqlite+aiosqlite"),
            sqlite_path=Path(url.database),
        )
    if scheme in ("postgres", "postgresql"):
        query = dict(url.query)
        connect_args: dict[str, Any] = {}
        ssl_mode = query.pop("sslmode", None)
        if ssl_mode is not None:
            if isinstance(ssl_mode, tuple) or ssl_mode not in _SSL_MODES:
                raise ValueError(f"DATABASE_URL has an unknown sslmode {ssl_mode!r}")
            connect_args["ssl"] = ssl_mode
        return DatabaseURL(
            backend="postgresql",
            url=url.set(drivername="postgresql+asyncpg", query=query),
            connect_args=connect_args,
        )
    raise ValueError(
        f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:/// or postgres://"
    )
