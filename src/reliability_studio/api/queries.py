"""Small query helpers shared by the service layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import BindParameter, ColumnElement, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from reliability_studio.api.problems import ConflictError, FieldError, UnprocessableError


def contains_text(
    query: str | BindParameter[str], *columns: InstrumentedAttribute[str | None]
) -> ColumnElement[bool]:
    """Case-insensitive substring match of `query` in any of `columns`, wildcards escaped.

    `query` may be a bound parameter, for a statement built once: its value must then be
    `like_pattern(text)`."""
    pattern = like_pattern(query) if isinstance(query, str) else query
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))


def like_pattern(text: str) -> str:
    """The LIKE pattern matching `text` anywhere, its wildcards (and escapes) escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def cursor_datetime(value: str) -> datetime:
    """The timestamp stored in a cursor; a 422 naming `cursor` if it is not one."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise UnprocessableError(
            "cursor is not valid; use the next_cursor of a previous page",
            field="cursor",
            location="query",
        ) from None


async def commit_unique(session: AsyncSession, detail: str, *, field: str | None = None) -> None:
    """Commit; when a unique constraint refuses it (a name already taken, perhaps by a
    concurrent request), roll back and answer 409 with `detail`, naming `field` if given."""
    await _unique(session, session.commit, detail, field)


async def flush_unique(session: AsyncSession, detail: str, *, field: str | None = None) -> None:
    """`commit_unique` for a flush inside a longer transaction."""
    await _unique(session, session.flush, detail, field)


async def _unique(
    session: AsyncSession,
    write: Callable[[], Awaitable[None]],
    detail: str,
    field: str | None,
) -> None:
    try:
        await write()
    except IntegrityError:
        await session.rollback()
        errors = (
            [FieldError(field=field, location="body", message="already taken")] if field else None
        )
        raise ConflictError(detail, errors=errors) from None
