"""Timeline operations. Events are append-only: there is no update or delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.problems import NotFoundError
from reliability_studio.db.base import utcnow
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
) -> TimelineEvent:
    """Append a caller's event to an incident's timeline (the incident must exist)."""
    event = record_event(
        session,
        organization_id=organization_id,
        incident_id=incident_id,
        type=data.type,
        source=data.source,
        title=data.title,
        description=data.description,
        metadata=data.metadata,
        actor=actor,
        occurred_at=data.occurred_at,
    )
    await session.commit()
    return event


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
