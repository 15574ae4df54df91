"""Opening an incident on PostgreSQL in one statement.

Through the ORM, `POST /api/incidents` sends ten statements, each a round trip: the token,
BEGIN, the services, the incident, its evidence-gathering run, its links, its first
timeline event, the notification policies, the audit entries and COMMIT. Under load a round
trip is a turn of a busy event loop (3 to 5 ms at 8 connections on 2 cores), and creates
were three quarters of the mixed load's slowest 1%. Here one statement checks the services
and writes the incident, its links, its first event and its run (PostgreSQL runs the
inserts of a `WITH` as one statement and checks their foreign keys at its end). Audit
entries, live events and notifications are reported as they are for the ORM's writes, and
the caller's transaction commits it all or nothing. SQLite keeps the ORM path.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import Uuid

from reliability_studio.api.problems import UnprocessableError
from reliability_studio.audit import capture as audit
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.db.core import execute_core
from reliability_studio.incidents.lifecycle import opening_event
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.incidents.schemas import IncidentCreate
from reliability_studio.live import capture as live
from reliability_studio.live.capture import incident_change, timeline_event_change
from reliability_studio.notify.outbox import enqueue_incident_events
from reliability_studio.timeline.models import TimelineEvent
from reliability_studio.timeline.service import SYSTEM_SOURCE


def _column_types() -> dict[str, Any]:
    incidents = cast(Table, Incident.__table__)
    events = cast(Table, TimelineEvent.__table__)
    return {
        "now": incidents.c.created_at.type,
        "title": incidents.c.title.type,
        "description": incidents.c.description.type,
        "severity": incidents.c.severity.type,
        "root_cause": incidents.c.root_cause.type,
        "commander": incidents.c.commander.type,
        "event_title": events.c.title.type,
        "event_metadata": events.c.metadata.type,
        "actor": events.c.actor.type,
    }


OPEN_INCIDENT = text(
    """
WITH found AS (
    SELECT services.id, services.name FROM services
    WHERE services.organization_id = :organization_id AND services.id = ANY(:service_ids)
), incident AS (
    INSERT INTO incidents (id, organization_id, title, description, severity, status,
        root_cause, commander, created_at, updated_at, version)
    VALUES (:id, :organization_id, :title, :description, :severity, 'open',
        :root_cause, :commander, :now, :now, 1)
), links AS (
    INSERT INTO incident_services (incident_id, service_id, created_at, organization_id)
    SELECT :id, found.id, :now, :organization_id FROM found
), first_event AS (
    INSERT INTO timeline_events (id, organization_id, incident_id, type, source, title,
        description, occurred_at, metadata, actor, created_at)
    VALUES (:event_id, :organization_id, :id, 'incident_created', :source, :event_title,
        NULL, :now, :event_metadata, :actor, :now)
), evidence_run AS (
    INSERT INTO analysis_runs (id, organization_id, incident_id, status, requested_by,
        due_at, attempts, created_at, updated_at)
    VALUES (:run_id, :organization_id, :id, 'pending', :actor, :now, 0, :now, :now)
)
SELECT found.id, found.name FROM found ORDER BY found.name, found.id
"""
).bindparams(
    bindparam("id", type_=Uuid()),
    bindparam("organization_id", type_=Uuid()),
    bindparam("event_id", type_=Uuid()),
    bindparam("run_id", type_=Uuid()),
    bindparam("service_ids", type_=ARRAY(Uuid())),
    bindparam("source"),
    *(bindparam(name, type_=type_) for name, type_ in _column_types().items()),
)


async def open_incident(
    session: AsyncSession, organization_id: uuid.UUID, actor: str, data: IncidentCreate
) -> Incident:
    """Add the incident with its links, first event and evidence run, uncommitted; 422
    naming the first unknown service (the caller's rollback then discards the rows)."""
    now = utcnow()
    service_ids = list(dict.fromkeys(data.service_ids))
    incident_id, event_id = uuid.uuid4(), uuid.uuid4()
    event_title, event_metadata = opening_event(data.severity, service_ids)
    parameters = {
        "id": incident_id,
        "organization_id": organization_id,
        "title": data.title,
        "description": data.description,
        "severity": data.severity,
        "root_cause": data.root_cause,
        "commander": data.commander,
        "now": now,
        "service_ids": service_ids,
        "event_id": event_id,
        "source": SYSTEM_SOURCE,
        "event_title": event_title,
        "event_metadata": event_metadata,
        "actor": actor,
        "run_id": uuid.uuid4(),
    }
    rows = (await execute_core(session, OPEN_INCIDENT, parameters)).all()
    found = {row.id: row.name for row in rows}
    for position, service_id in enumerate(data.service_ids):
        if service_id not in found:
            raise UnprocessableError(
                f"service {service_id} does not exist", field=f"service_ids.{position}"
            )
    incident = _incident(parameters)
    services = [Service(id=row.id, organization_id=organization_id, name=row.name) for row in rows]
    set_committed_value(incident, "services", services)
    _report(session, incident, parameters, service_ids)
    await enqueue_incident_events(session, organization_id, [("incident.created", incident)])
    return incident


def _incident(parameters: dict[str, Any]) -> Incident:
    """The incident as written, detached: what the response and the outbox read."""
    return Incident(
        id=parameters["id"],
        organization_id=parameters["organization_id"],
        title=parameters["title"],
        description=parameters["description"],
        severity=parameters["severity"],
        status="open",
        root_cause=parameters["root_cause"],
        commander=parameters["commander"],
        created_at=parameters["now"],
        updated_at=parameters["now"],
        acknowledged_at=None,
        resolved_at=None,
        closed_at=None,
        version=1,
    )


def _report(
    session: AsyncSession,
    incident: Incident,
    parameters: dict[str, Any],
    service_ids: Sequence[uuid.UUID],
) -> None:
    """The audit entries and live events the ORM's hooks would have made of these rows."""
    organization_id, now = parameters["organization_id"], parameters["now"]
    incident_row = {
        column.name: getattr(incident, column.name)
        for column in cast(Table, Incident.__table__).columns
    }
    audit.record_created(session, Incident, [incident_row])
    links = [
        {
            "incident_id": incident.id,
            "service_id": service_id,
            "created_at": now,
            "organization_id": organization_id,
        }
        for service_id in service_ids
    ]
    audit.record_created(session, IncidentService, links)
    event_row = {
        "id": parameters["event_id"],
        "organization_id": organization_id,
        "incident_id": incident.id,
        "type": "incident_created",
        "source": parameters["source"],
        "title": parameters["event_title"],
        "description": None,
        "occurred_at": now,
        "metadata": parameters["event_metadata"],
        "actor": parameters["actor"],
        "created_at": now,
    }
    audit.record_created(session, TimelineEvent, [event_row])
    live.record(session, incident_change(incident_row, "created"))
    live.record(session, timeline_event_change(event_row, "created"))
    live.know_services(session, incident.id, service_ids)
