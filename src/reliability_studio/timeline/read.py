"""The read path of an incident's timeline, answered straight from rows to JSON.

A dashboard polls the timeline of an open incident every few seconds. As for incident
lists (`incidents/read.py`), the events are selected as columns with a statement built once,
and each becomes a dict in the exact shape of `TimelineEventOut`, encoded once by orjson:
no ORM objects and no pydantic models validated and then serialised again.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import PageRequest, fetch_keyset_page, keyset
from reliability_studio.timeline.models import TimelineEvent
from reliability_studio.timeline.schemas import TimelineEventOut

# The fields of TimelineEventOut are all columns, under the same names.
EVENT_FIELDS = tuple(TimelineEventOut.model_fields)
EVENT_COLUMNS = tuple(TimelineEvent.__table__.c[field] for field in EVENT_FIELDS)


@functools.cache
def events_statement(typed: bool, after_cursor: bool) -> Select[Any]:
    """A page of an incident's events, oldest first (parameters `incident_id`,
    `organization_id`, and `types` when `typed`); built once per shape of request."""
    query = select(*EVENT_COLUMNS).where(
        TimelineEvent.incident_id == bindparam("incident_id"),
        TimelineEvent.organization_id == bindparam("organization_id"),
    )
    if typed:
        query = query.where(TimelineEvent.type.in_(bindparam("types", expanding=True)))
    return keyset(
        query,
        sort=TimelineEvent.occurred_at,
        row_id=TimelineEvent.id,
        descending=False,
        after=after_cursor,
    )


async def event_page(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    page: PageRequest,
    types: list[str] | None = None,
) -> dict[str, Any]:
    """One page of the incident's events in time order, as a list body."""
    parameters: dict[str, Any] = {"incident_id": incident_id, "organization_id": organization_id}
    if types:
        parameters["types"] = types
    rows, next_cursor = await fetch_keyset_page(
        session,
        events_statement(bool(types), page.after is not None),
        page,
        sort=TimelineEvent.occurred_at,
        row_id=TimelineEvent.id,
        parameters=parameters,
    )
    return {
        "items": [dict(zip(EVENT_FIELDS, row, strict=True)) for row in rows],
        "next_cursor": next_cursor,
    }
