"""Keyset (cursor) pagination.

A list answers `{"items": [...], "next_cursor": "..."}`. The cursor is an opaque,
URL-safe token holding the sort key of the last item; pass it back as `?cursor=` for the
next page. `next_cursor` is null on the last page. Keyset rather than OFFSET, so that page
1,000 costs what page 1 does, and rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Row, Select, bindparam, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from reliability_studio.api.problems import UnprocessableError
from reliability_studio.api.queries import cursor_datetime
from reliability_studio.db.base import UTCDateTime
from reliability_studio.db.core import execute_core

ItemT = TypeVar("ItemT")

CursorKey = tuple[str, uuid.UUID]


class Page(BaseModel, Generic[ItemT]):
    """One page of a list."""

    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


@dataclass(frozen=True)
class PageRequest:
    """The validated `limit` and decoded `cursor` of a list request."""

    limit: int
    after: CursorKey | None


def encode_cursor(sort_value: str | datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor for the row with this sort key."""
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = orjson.dumps([value, str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> CursorKey:
    """The sort key inside `cursor`; a 422 naming `cursor` when it was not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, str) or not isinstance(row_id, str):
            raise TypeError(value)
        return value, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise UnprocessableError(
            "cursor is not valid; use the next_cursor of a previous page",
            field="cursor",
            location="query",
        ) from None


async def page_request(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, description="Items per page (default 50, at most 500).")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageRequest:
    """The `limit` and `cursor` query parameters, bounded by the settings."""
    settings = request.app.state.settings
    if limit is not None and limit > settings.page_limit_max:
        raise UnprocessableError(
            f"limit must be at most {settings.page_limit_max}", field="limit", location="query"
        )
    return PageRequest(
        limit=limit or settings.page_limit_default,
        after=decode_cursor(cursor) if cursor else None,
    )


PageParams = Annotated[PageRequest, Depends(page_request)]


def split_page(rows: Sequence[ItemT], limit: int) -> tuple[Sequence[ItemT], bool]:
    """The rows of this page, and whether another page follows (we fetch limit + 1)."""
    return rows[:limit], len(rows) > limit


RowT = TypeVar("RowT")


async def fetch_page(
    session: AsyncSession,
    query: Select[RowT],
    page: PageRequest,
    *,
    sort: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[uuid.UUID],
    render: Callable[[RowT], ItemT],
    descending: bool = False,
) -> Page[ItemT]:
    """One page of `query`, ordered by (`sort`, `row_id`), continuing after `page.after`.

    `sort` holds a timestamp or a string; the cursor carries the last row's value of it.
    One extra row is fetched to learn whether another page follows.
    """
    statement = keyset(
        query, sort=sort, row_id=row_id, descending=descending, after=page.after is not None
    )
    rows = (await session.scalars(statement, keyset_parameters(page, sort))).all()
    items, next_cursor = _page_of(rows, page, sort, row_id)
    return Page(items=[render(row) for row in items], next_cursor=next_cursor)


async def fetch_keyset_page(
    session: AsyncSession,
    statement: Select[Any],
    page: PageRequest,
    *,
    sort: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[uuid.UUID],
    parameters: dict[str, Any] | None = None,
) -> tuple[Sequence[Row[Any]], str | None]:
    """One page of rows of a statement made by `keyset` (built once and kept, so it
    selects `sort` and `row_id` under their own names), run with `parameters` and the
    page's own: the rows and the next cursor."""
    values = {**(parameters or {}), **keyset_parameters(page, sort)}
    rows = (await execute_core(session, statement, values)).all()
    return _page_of(rows, page, sort, row_id)


def _page_of(
    rows: Sequence[RowT],
    page: PageRequest,
    sort: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[uuid.UUID],
) -> tuple[Sequence[RowT], str | None]:
    """The rows of the page (one more was fetched) and the cursor after its last row, or
    None when no page follows."""
    items, more = split_page(rows, page.limit)
    if not more:
        return items, None
    last = items[-1]
    return items, encode_cursor(getattr(last, sort.key), getattr(last, row_id.key))


def keyset(
    query: Select[Any],
    *,
    sort: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[uuid.UUID],
    descending: bool,
    after: bool,
) -> Select[Any]:
    """`query` ordered by (`sort`, `row_id`), one page long, after a cursor if `after`;
    the page's bounds are parameters (`keyset_parameters`), so that a statement can be
    built once per shape of request rather than once per request."""
    if after:
        position = tuple_(sort, row_id)
        boundary = tuple_(
            bindparam("after_sort", type_=sort.type), bindparam("after_id", type_=row_id.type)
        )
        query = query.where(position < boundary if descending else position > boundary)
    order = (sort.desc(), row_id.desc()) if descending else (sort, row_id)
    return query.order_by(*order).limit(bindparam("page_rows"))


def keyset_parameters(page: PageRequest, sort: InstrumentedAttribute[Any]) -> dict[str, Any]:
    """The values of `keyset`'s parameters for this page (one more row than the page, to
    learn whether another follows)."""
    values: dict[str, Any] = {"page_rows": page.limit + 1}
    if page.after is not None:
        after_value, after_id = page.after
        values["after_sort"] = cursor_datetime(after_value) if _is_time(sort) else after_value
        values["after_id"] = after_id
    return values


def _is_time(column: InstrumentedAttribute[Any]) -> bool:
    return isinstance(column.type, UTCDateTime)
