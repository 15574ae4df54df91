"""HTTP layer of `/api/incidents/{id}/tasks`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session, reads_only
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.incidents.service import ensure_incident_exists
from reliability_studio.tasks import service as tasks
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.tasks.schemas import TaskCreate, TaskOut, TaskStatus, TaskUpdate

router = APIRouter(
    prefix="/api/incidents/{incident_id}/tasks", tags=["tasks"], responses=PROBLEM_RESPONSES
)


@router.get("", response_model=Page[TaskOut])
@reads_only
async def list_tasks(
    incident_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: Annotated[TaskStatus | None, Query()] = None,
) -> Page[TaskOut]:
    """The incident's action items, in the order they were added."""
    await ensure_incident_exists(session, organization_id, incident_id)
    return await tasks.list_tasks(session, organization_id, incident_id, page, status=status)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=TaskOut, responses=etag_responses(201)
)
async def create_task(
    incident_id: uuid.UUID,
    body: TaskCreate,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
) -> TaskOut:
    """Add an action item to the incident."""
    await ensure_incident_exists(session, organization_id, incident_id)
    task = await tasks.create_task(session, organization_id, incident_id, body)
    response.headers["Location"] = f"/api/incidents/{incident_id}/tasks/{task.id}"
    return with_etag(response, TaskOut.model_validate(task))


@router.get("/{task_id}", response_model=TaskOut, responses=etag_responses(200))
@reads_only
async def get_task(
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
) -> TaskOut:
    """One action item."""
    task = await tasks.get_task(session, organization_id, incident_id, task_id)
    return with_etag(response, TaskOut.model_validate(task))


@router.patch("/{task_id}", response_model=TaskOut, responses=etag_responses(200, conditional=True))
async def update_task(
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
    session: Session,
    organization_id: OrganizationId,
    if_match: IfMatch,
    response: Response,
) -> TaskOut:
    """Change an action item; `"status": "done"` records `completed_at`. With `If-Match`,
    only if nobody changed it since (412 otherwise), so two responders never overwrite
    each other unseen."""
    await _lock(session, if_match, organization_id, incident_id, task_id)
    task = await tasks.update_task(session, organization_id, incident_id, task_id, body)
    return with_etag(response, TaskOut.model_validate(task))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_task(
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    if_match: IfMatch,
) -> None:
    """Remove an action item (412: stale `If-Match`)."""
    await _lock(session, if_match, organization_id, incident_id, task_id)
    await tasks.delete_task(session, organization_id, incident_id, task_id)


async def _lock(
    session: Session,
    if_match: IfMatch,
    organization_id: OrganizationId,
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
) -> None:
    await lock_for_write(
        session,
        if_match,
        IncidentTask,
        IncidentTask.id == task_id,
        IncidentTask.incident_id == incident_id,
        IncidentTask.organization_id == organization_id,
        what=f"task {task_id}",
    )
