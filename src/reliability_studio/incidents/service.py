"""Incident operations: create, read, list, update, with automatic timeline events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from reliability_studio.analysis.queue import queue_run
from reliability_studio.api.pagination import PageRequest
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import (
    ConflictError,
    FieldError,
    NotFoundError,
    UnprocessableError,
)
from reliability_studio.api.queries import like_pattern
from reliability_studio.audit import capture as audit
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.db.core import execute_core
from reliability_studio.incidents.create_pg import open_incident
from reliability_studio.incidents.lifecycle import (
    LifecycleTimes,
    Severity,
    Status,
    opening_event,
    seconds_between,
    times_after_transition,
    transition_refusal,
)
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.incidents.read import incident_page
from reliability_studio.incidents.schemas import (
    IncidentCreate,
    IncidentOut,
    IncidentUpdate,
    ServiceRef,
)
from reliability_studio.live import capture as live
from reliability_studio.notify.outbox import (
    enqueue_incident_events,
    incident_event_after_status,
)
from reliability_studio.timeline.service import record_event


async def create_incident(
    session: AsyncSession, organization_id: uuid.UUID, actor: str, data: IncidentCreate
) -> Incident:
    """Open an incident linked to `service_ids`, with its `incident_created` timeline event.

    The incident, its links and its first event are committed together or not at all.
    On PostgreSQL they are written in one statement (see `create_pg.py`).
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        incident = await open_incident(session, organization_id, actor, data)
    else:
        incident = await add_incident(session, organization_id, actor, data)
    await session.commit()
    return incident


async def add_incident(
    session: AsyncSession, organization_id: uuid.UUID, actor: str, data: IncidentCreate
) -> Incident:
    """Add an incident, its links and its first event to the session, uncommitted, so that
    a caller (the SLO engine) can commit it with its own changes."""
    services = await _services_by_id(session, organization_id, data.service_ids, "service_ids")
    [incident] = await add_incidents(session, organization_id, actor, [(data, services)])
    return incident


async def add_incidents(
    session: AsyncSession,
    organization_id: uuid.UUID,
    actor: str,
    items: Sequence[tuple[IncidentCreate, Sequence[Service]]],
) -> list[Incident]:
    """Add many incidents, each linked to its (already validated) services and with its
    `incident_created` event, uncommitted. Two flushes in all, however many incidents:
    alert correlation opens hundreds at once in a storm."""
    now = utcnow()
    incidents = [
        Incident(
            id=uuid.uuid4(),
            organization_id=organization_id,
            title=data.title,
            description=data.description,
            severity=data.severity,
            status="open",
            root_cause=data.root_cause,
            commander=data.commander,
            created_at=now,
            updated_at=now,
        )
        for data, _ in items
    ]
    session.add_all(incidents)
    await session.flush()  # the incident rows must exist before their links
    for incident, (data, services) in zip(incidents, items, strict=True):
        _link_services(session, incident, list(services))
        title, metadata = opening_event(data.severity, [service.id for service in services])
        record_event(
            session,
            organization_id=organization_id,
            incident_id=incident.id,
            type="incident_created",
            title=title,
            actor=actor,
            occurred_at=now,
            metadata=metadata,
        )
        set_committed_value(incident, "services", sorted(services, key=lambda s: s.name))
        # Evidence gathering starts with the incident, durably: a row in this transaction.
        queue_run(session, organization_id, incident.id, actor)
    await session.flush()
    for incident, (_, services) in zip(incidents, items, strict=True):
        live.know_services(session, incident.id, [service.id for service in services])
    # So do its notifications (the outbox): delivered whatever happens after the commit.
    await enqueue_incident_events(
        session, organization_id, [("incident.created", incident) for incident in incidents]
    )
    return incidents


async def open_incident_for_service(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID
) -> Incident | None:
    """The newest incident of the service that is not resolved or closed, if any."""
    return await session.scalar(
        select(Incident)
        .where(
            Incident.organization_id == organization_id,
            Incident.status.not_in(("resolved", "closed")),
            exists().where(
                IncidentService.incident_id == Incident.id,
                IncidentService.service_id == service_id,
            ),
        )
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(1)
    )


async def get_incident(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Incident:
    """The incident with its services (one statement), or 404."""
    query = (
        select(Incident)
        .where(Incident.id == incident_id, Incident.organization_id == organization_id)
        .options(joinedload(Incident.services))
    )
    if for_update:  # FOR NO KEY UPDATE: a timeline insert referring to it need not wait;
        # OF incidents: the services joined in are only read
        query = query.with_for_update(key_share=True, of=Incident)
    incident = (await session.scalars(query)).unique().one_or_none()
    if incident is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    return incident


# Built once: most requests under an incident's path start with this check.
INCIDENT_EXISTS = select(
    exists().where(
        Incident.id == bindparam("incident_id"),
        Incident.organization_id == bindparam("organization_id"),
    )
)


async def ensure_incident_exists(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID
) -> None:
    """404 unless the incident exists in this organization."""
    parameters = {"incident_id": incident_id, "organization_id": organization_id}
    found = (await execute_core(session, INCIDENT_EXISTS, parameters)).scalar()
    if not found:
        raise NotFoundError(f"incident {incident_id} does not exist")


async def list_incidents(
    session: AsyncSession,
    organization_id: uuid.UUID,
    page: PageRequest,
    *,
    statuses: list[Status] | None = None,
    severities: list[Severity] | None = None,
    service_id: uuid.UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    """Incidents, newest first, filtered; each filter narrows the list further.

    The list body (`Page[IncidentOut]` as plain data, see `read.py`)."""
    filters: dict[str, Any] = {}
    if statuses:
        filters["statuses"] = list(statuses)
    if severities:
        filters["severities"] = list(severities)
    if service_id is not None:
        filters["service_id"] = service_id
    if created_after is not None:
        filters["created_after"] = created_after
    if created_before is not None:
        filters["created_before"] = created_before
    if q:
        filters["pattern"] = like_pattern(q)
    return await incident_page(session, organization_id, page, filters)


async def update_incident(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    actor: str,
    data: IncidentUpdate,
) -> Incident:
    """Apply the given changes. Status follows the lifecycle; each change is on the timeline."""
    changes = patch_changes(data, "title", "severity", "status", "service_ids")

    incident = await get_incident(session, organization_id, incident_id, for_update=True)
    now = utcnow()
    event_args: dict[str, Any] = {
        "organization_id": organization_id,
        "incident_id": incident.id,
        "actor": actor,
        "occurred_at": now,
    }

    changed = False  # tracked by hand: autoflush (before the service query) empties session.dirty
    status_before, severity_before = incident.status, incident.severity
    target_status = changes.pop("status", incident.status)
    if target_status != incident.status:
        change_status(session, incident, target_status, actor=actor, now=now)
        changed = True

    new_severity = changes.pop("severity", incident.severity)
    if new_severity != incident.severity:
        record_event(
            session,
            type="severity_change",
            title=f"Severity changed from {incident.severity} to {new_severity}",
            metadata={"from": incident.severity, "to": new_severity},
            **event_args,
        )
        incident.severity = new_severity
        changed = True

    if "service_ids" in changes:
        services_changed = await _replace_services(
            session, incident, changes.pop("service_ids"), event_args
        )
        changed = changed or services_changed

    if "root_cause" in changes and changes["root_cause"] != incident.root_cause:
        record_event(
            session,
            type="root_cause_updated",
            title="Root cause updated",
            description=changes["root_cause"],
            **event_args,
        )

    for field, value in changes.items():
        if getattr(incident, field) != value:
            setattr(incident, field, value)
            changed = True
    if changed:  # a PATCH that changes nothing leaves updated_at as it was
        incident.updated_at = now
    if target_status != status_before:
        event = incident_event_after_status(target_status)
        await enqueue_incident_events(session, organization_id, [(event, incident)])
    elif new_severity != severity_before:
        await enqueue_incident_events(session, organization_id, [("incident.updated", incident)])
    await session.flush()  # the links, if they changed: what the live event must name
    live.know_services(session, incident.id, [service.id for service in incident.services])
    await session.commit()
    return incident


def incident_out(incident: Incident) -> IncidentOut:
    """The API shape of an incident (its services must be loaded)."""
    return IncidentOut(
        id=incident.id,
        organization_id=incident.organization_id,
        title=incident.title,
        description=incident.description,
        severity=incident.severity,
        status=incident.status,
        root_cause=incident.root_cause,
        commander=incident.commander,
        service_ids=[service.id for service in incident.services],
        services=[ServiceRef(id=service.id, name=service.name) for service in incident.services],
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        closed_at=incident.closed_at,
        time_to_acknowledge_seconds=seconds_between(incident.created_at, incident.acknowledged_at),
        time_to_resolve_seconds=seconds_between(incident.created_at, incident.resolved_at),
        version=incident.version,
    )


def change_status(
    session: AsyncSession, incident: Incident, target: Status, *, actor: str, now: datetime
) -> None:
    """Move the incident to `target` with its `status_change` event (uncommitted).

    409 naming `status` when the lifecycle does not allow the move.
    """
    _apply_transition(incident, target, now)
    record_event(
        session,
        organization_id=incident.organization_id,
        incident_id=incident.id,
        type="status_change",
        title=f"Status changed from {incident.status} to {target}",
        actor=actor,
        occurred_at=now,
        metadata={"from": incident.status, "to": target},
    )
    incident.status = target
    incident.updated_at = now


def _apply_transition(incident: Incident, target: Status, now: datetime) -> None:
    refusal = transition_refusal(incident.status, target)  # type: ignore[arg-type]
    if refusal is not None:
        raise ConflictError(
            refusal, errors=[FieldError(field="status", location="body", message=refusal)]
        )
    times = times_after_transition(
        LifecycleTimes(incident.acknowledged_at, incident.resolved_at, incident.closed_at),
        target,
        now,
    )
    incident.acknowledged_at = times.acknowledged_at
    incident.resolved_at = times.resolved_at
    incident.closed_at = times.closed_at


async def _services_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: list[uuid.UUID], field: str
) -> list[Service]:
    """The services with these ids, in this organization; 422 naming the first unknown one."""
    unique_ids = list(dict.fromkeys(ids))
    if not unique_ids:
        return []
    found = {
        service.id: service
        for service in await session.scalars(
            select(Service).where(
                Service.organization_id == organization_id, Service.id.in_(unique_ids)
            )
        )
    }
    for position, service_id in enumerate(ids):
        if service_id not in found:
            raise UnprocessableError(
                f"service {service_id} does not exist", field=f"{field}.{position}"
            )
    return [found[service_id] for service_id in unique_ids]


def _link_services(session: AsyncSession, incident: Incident, services: list[Service]) -> None:
    session.add_all(
        IncidentService(
            organization_id=incident.organization_id,
            incident_id=incident.id,
            service_id=service.id,
        )
        for service in services
    )


async def _replace_services(
    session: AsyncSession,
    incident: Incident,
    service_ids: list[uuid.UUID],
    event_args: dict[str, Any],
) -> bool:
    """Link exactly these services; whether the set changed."""
    services = await _services_by_id(session, incident.organization_id, service_ids, "service_ids")
    current = {service.id for service in incident.services}
    wanted = {service.id for service in services}
    if current == wanted:
        return False
    removed, added = current - wanted, wanted - current
    if removed:
        unlinked = await session.execute(
            delete(IncidentService)
            .where(
                IncidentService.incident_id == incident.id,
                IncidentService.service_id.in_(removed),
            )
            .returning(*IncidentService.__table__.columns)
        )
        audit.record_deleted(session, IncidentService, unlinked.mappings().all())
    _link_services(session, incident, [s for s in services if s.id in added])
    names = {service.id: service.name for service in [*incident.services, *services]}
    record_event(
        session,
        type="services_changed",
        title="Affected services changed",
        metadata={
            "added": sorted(names[i] for i in added),
            "removed": sorted(names[i] for i in removed),
        },
        **event_args,
    )
    set_committed_value(incident, "services", sorted(services, key=lambda s: s.name))
    return True
