"""HTTP layer of `/api/incidents` and `/api/services/{id}/incidents`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import Actor, OrganizationId, Session, reads_only
from reliability_studio.api.etags import etag_of
from reliability_studio.api.fields import NoNul, Timestamp
from reliability_studio.api.json_body import json_response
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.catalog.service import get_service
from reliability_studio.incidents import read
from reliability_studio.incidents import service as incidents
from reliability_studio.incidents.lifecycle import Severity, Status
from reliability_studio.incidents.models import Incident
from reliability_studio.incidents.schemas import IncidentCreate, IncidentOut, IncidentUpdate

router = APIRouter(tags=["incidents"], responses=PROBLEM_RESPONSES)

StatusFilter = Annotated[
    list[Status] | None, Query(description="Repeat to match any of several statuses.")
]
SeverityFilter = Annotated[
    list[Severity] | None, Query(description="Repeat to match any of several severities.")
]
CreatedAfter = Annotated[
    Timestamp | None, Query(description="Created at or after this RFC 3339 time.")
]
CreatedBefore = Annotated[Timestamp | None, Query(description="Created before this time.")]
# NUL is refused here: PostgreSQL cannot compare text with it and would fail the query.
TextQuery = Annotated[
    Annotated[str, NoNul] | None,
    Query(max_length=200, description="Text in title, description or root cause."),
]


@router.post(
    "/api/incidents",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentOut,
    responses=etag_responses(201),
)
async def create_incident(
    body: IncidentCreate,
    session: Session,
    organization_id: OrganizationId,
    actor: Actor,
    response: Response,
) -> IncidentOut:
    """Open an incident. Unknown `service_ids` are refused with 422."""
    incident = await incidents.create_incident(session, organization_id, actor, body)
    response.headers["Location"] = f"/api/incidents/{incident.id}"
    return with_etag(response, incidents.incident_out(incident))


@router.get("/api/incidents", response_model=Page[IncidentOut])
@reads_only
async def list_incidents(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: StatusFilter = None,
    severity: SeverityFilter = None,
    service_id: uuid.UUID | None = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    q: TextQuery = None,
) -> Response:
    """List incidents, newest first, e.g. `?status=open&severity=critical`."""
    body = await incidents.list_incidents(
        session,
        organization_id,
        page,
        statuses=status,
        severities=severity,
        service_id=service_id,
        created_after=created_after,
        created_before=created_before,
        q=q,
    )
    return json_response(body)


@router.get(
    "/api/incidents/{incident_id}", response_model=IncidentOut, responses=etag_responses(200)
)
@reads_only
async def get_incident(
    incident_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> Response:
    """One incident with its services and lifecycle times."""
    document = await read.incident_document(session, organization_id, incident_id)
    return json_response(document, headers={"ETag": etag_of(document["version"])})


@router.patch(
    "/api/incidents/{incident_id}",
    response_model=IncidentOut,
    responses=etag_responses(200, conditional=True),
)
async def update_incident(
    incident_id: uuid.UUID,
    body: IncidentUpdate,
    session: Session,
    organization_id: OrganizationId,
    actor: Actor,
    if_match: IfMatch,
    response: Response,
) -> IncidentOut:
    """Change an incident. A forbidden status transition answers 409 with the reason;
    a stale `If-Match` answers 412."""
    if if_match is not None:  # without one, the service's own locking read is enough
        await lock_for_write(
            session,
            if_match,
            Incident,
            Incident.id == incident_id,
            Incident.organization_id == organization_id,
            what=f"incident {incident_id}",
        )
    incident = await incidents.update_incident(session, organization_id, incident_id, actor, body)
    return with_etag(response, incidents.incident_out(incident))


@router.get("/api/services/{service_id}/incidents", response_model=Page[IncidentOut])
@reads_only
async def list_service_incidents(
    service_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: StatusFilter = None,
    severity: SeverityFilter = None,
) -> Response:
    """Incidents that affect one service, newest first (404 if the service does not exist)."""
    await get_service(session, organization_id, service_id)
    body = await incidents.list_incidents(
        session,
        organization_id,
        page,
        statuses=status,
        severities=severity,
        service_id=service_id,
    )
    return json_response(body)
