"""HTTP layer of `/api/incidents/{id}/timeline`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from reliability_studio.api.deps import Actor, OrganizationId, Session, reads_only
from reliability_studio.api.json_body import json_response
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.incidents.service import ensure_incident_exists
from reliability_studio.timeline import read
from reliability_studio.timeline import service as timeline
from reliability_studio.timeline.schemas import EventType, TimelineEventCreate, TimelineEventOut

router = APIRouter(
    prefix="/api/incidents/{incident_id}/timeline", tags=["timeline"], responses=PROBLEM_RESPONSES
)


@router.get("", response_model=Page[TimelineEventOut])
@reads_only
async def list_timeline(
    incident_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    type: Annotated[
        list[EventType] | None,
        Query(description="Only events of these types (repeat for several)."),
    ] = None,
) -> Response:
    """The incident's timeline, oldest event first."""
    await ensure_incident_exists(session, organization_id, incident_id)
    return json_response(await read.event_page(session, organization_id, incident_id, page, type))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TimelineEventOut)
async def add_timeline_event(
    incident_id: uuid.UUID,
    body: TimelineEventCreate,
    session: Session,
    organization_id: OrganizationId,
    actor: Actor,
    response: Response,
) -> TimelineEventOut:
    """Append an event to the incident's timeline."""
    event = await timeline.add_event(session, organization_id, incident_id, actor, body)
    response.headers["Location"] = f"/api/incidents/{incident_id}/timeline/{event.id}"
    return event


@router.get("/{event_id}", response_model=TimelineEventOut)
@reads_only
async def get_timeline_event(
    incident_id: uuid.UUID, event_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> TimelineEventOut:
    """One timeline event."""
    return timeline.event_out(
        await timeline.get_event(session, organization_id, incident_id, event_id)
    )
