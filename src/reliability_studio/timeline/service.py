"""Timeline operations. Events are append-only: there is no update or delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from reliability_studio.api.problems import NotFoundError
from reliability_studio.audit import capture as audit
from reliability_studio.db.base import utcnow
from reliability_studio.db.core import execute_core
from reliability_studio.incidents.models import Incident
from reliability_studio.live import capture as live
from reliability_studio.live.capture import timeline_event_change
from reliability_studio.timeline.models import TimelineEvent
from reliability_studio.timeline.schemas import TimelineEventCreate, TimelineEventOut

SYSTEM_SOURCE = "reliability-studio"


def record_event(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    type: str,
    title: str,
    actor: str,
    source: str = SYSTEM_SOURCE,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> TimelineEvent:
    """Add an event to the session, to be committed with the change that caused it."""
    event = TimelineEvent(
        id=uuid.uuid4(),
        organization_id=organization_id,
        incident_id=incident_id,
        type=type,
        source=source,
        title=title,
        description=description,
        event_metadata=metadata,
        actor=actor,
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    return event


async def add_event(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    actor: str,
    data: TimelineEventCreate,
) -> TimelineEventOut:
    """Append a caller's event to an incident's timeline; 404 unless the incident exists.

    One statement inserts the event only if the incident is there, and the audit entry and
    live event are reported by hand: this is the busiest write of an incident room, and the
    separate existence check and the ORM's flush were a third of its cost (py-spy).
    """
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "incident_id": incident_id,
        "type": data.type,
        "source": data.source,
        "title": data.title,
        "description": data.description,
        "occurred_at": data.occurred_at or now,
        "metadata": data.metadata,
        "actor": actor,
        "created_at": now,
    }
    if (await execute_core(session, APPEND_EVENT, values)).first() is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    audit.record_created(session, TimelineEvent, [values])
    live.record(session, timeline_event_change(values, "created"))
    await session.commit()
    return TimelineEventOut.model_validate(values)


def _append_event_statement() -> ReturningInsert[tuple[uuid.UUID]]:
    """`INSERT INTO timeline_events ... SELECT ... FROM incidents WHERE id AND organization`:
    the event's values as typed parameters, inserted only if the incident is there."""
    table = cast(Table, TimelineEvent.__table__)
    names = [column.name for column in table.columns]
    parameters = [
        Incident.id if name == "incident_id" else bindparam(name, type_=table.c[name].type)
        for name in names
    ]
    incident = select(*parameters).where(
        Incident.id == bindparam("incident_id"),
        Incident.organization_id == bindparam("organization_id"),
    )
    return insert(table).from_select(names, incident).returning(table.c.id)


APPEND_EVENT = _append_event_statement()


async def get_event(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, event_id: uuid.UUID
) -> TimelineEvent:
    """One event of an incident's timeline, or 404."""
    event = await session.scalar(
        select(TimelineEvent).where(
            TimelineEvent.id == event_id,
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.organization_id == organization_id,
        )
    )
    if event is None:
        raise NotFoundError(f"timeline event {event_id} does not exist on incident {incident_id}")
    return event


def event_out(event: TimelineEvent) -> TimelineEventOut:
    """The API shape of a timeline event."""
    return TimelineEventOut(
        id=event.id,
        incident_id=event.incident_id,
        type=event.type,
        source=event.source,
        title=event.title,
        description=event.description,
        occurred_at=event.occurred_at,
        metadata=event.event_metadata,
        actor=event.actor,
        created_at=event.created_at,
    )
