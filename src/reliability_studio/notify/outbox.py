"""The transactional outbox: notification rows added in the transaction of the change that
causes them, one per channel that a matching policy names. If the change rolls back, so
do its notifications; if it commits, they will be delivered, whatever happens next.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.db.core import execute_core
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.notify.delivery import EventType
from reliability_studio.notify.models import (
    Notification,
    NotificationChannel,
    NotificationPolicy,
)
from reliability_studio.notify.policies import EventFacts, PolicySpec, channels_for


def incident_event_after_status(status: str) -> EventType:
    """The event a status change is: resolving or closing is `incident.resolved`."""
    return "incident.resolved" if status in ("resolved", "closed") else "incident.updated"


async def enqueue_incident_events(
    session: AsyncSession,
    organization_id: uuid.UUID,
    events: Sequence[tuple[EventType, Incident]],
    *,
    title: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Add the notifications these incident events cause (uncommitted); how many.

    `title` replaces the incident's title in the message (e.g. for a task assignment), and
    `details` travel in the resource (the task, the burn rates). A fixed number of queries
    however many events: alert storms open incidents in batches.
    """
    if not events:
        return 0
    policies = await _enabled_policies(session, organization_id)
    if not policies:
        return 0
    channels = await _enabled_channels(session, organization_id, policies)
    services = await _services_of(session, [incident.id for _, incident in events])
    now = utcnow()
    added = 0
    for event, incident in events:
        names = frozenset(name for name, _ in services[incident.id])
        teams = frozenset(team for _, team in services[incident.id] if team)
        facts = EventFacts(event, incident.severity, names, teams)
        for channel_id in channels_for(policies, facts):
            if channel_id not in channels:
                continue
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    organization_id=organization_id,
                    channel_id=channel_id,
                    event=event,
                    incident_id=incident.id,
                    payload=_payload(event, incident, sorted(names), title, details),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            added += 1
    return added


def _payload(
    event: EventType,
    incident: Incident,
    services: list[str],
    title: str | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the dispatcher needs to build the `delivery.Notification`, as JSON."""
    return {
        "event": event,
        "incident_id": str(incident.id),
        "title": title or incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "services": services,
        "resource": {
            "id": str(incident.id),
            "title": incident.title,
            "description": incident.description,
            "severity": incident.severity,
            "status": incident.status,
            "services": services,
            "created_at": incident.created_at.isoformat(),
            "updated_at": incident.updated_at.isoformat(),
            **({"details": details} if details else {}),
        },
    }


# Built once, columns only, on the Core path: every incident change asks, and most
# organizations have few policies or none. (No autoflush either: the changes being made
# are flushed once, at the commit, unless a policy needs their services.)
ENABLED_POLICIES = select(
    NotificationPolicy.id,
    NotificationPolicy.events,
    NotificationPolicy.channel_ids,
    NotificationPolicy.min_severity,
    NotificationPolicy.services,
    NotificationPolicy.teams,
).where(
    NotificationPolicy.organization_id == bindparam("organization_id"),
    NotificationPolicy.enabled.is_(True),
)


async def _enabled_policies(session: AsyncSession, organization_id: uuid.UUID) -> list[PolicySpec]:
    rows = await execute_core(session, ENABLED_POLICIES, {"organization_id": organization_id})
    return [
        PolicySpec(
            id=row.id,
            enabled=True,
            events=frozenset(row.events),
            channel_ids=tuple(uuid.UUID(channel) for channel in row.channel_ids),
            min_severity=row.min_severity,
            services=frozenset(row.services),
            teams=frozenset(row.teams),
        )
        for row in rows
    ]


async def _enabled_channels(
    session: AsyncSession, organization_id: uuid.UUID, policies: list[PolicySpec]
) -> set[uuid.UUID]:
    wanted = {channel for policy in policies for channel in policy.channel_ids}
    return set(
        await session.scalars(
            select(NotificationChannel.id).where(
                NotificationChannel.organization_id == organization_id,
                NotificationChannel.id.in_(wanted),
                NotificationChannel.enabled.is_(True),
            )
        )
    )


async def _services_of(
    session: AsyncSession, incident_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str | None]]]:
    found: dict[uuid.UUID, list[tuple[str, str | None]]] = defaultdict(list)
    rows = await session.execute(
        select(IncidentService.incident_id, Service.name, Service.team)
        .join(Service, Service.id == IncidentService.service_id)
        .where(IncidentService.incident_id.in_(incident_ids))
    )
    for incident_id, name, team in rows:
        found[incident_id].append((name, team))
    return found
