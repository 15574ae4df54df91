"""HTTP layer of `/api/incidents/{id}/tasks`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.incidents.service import ensure_incident_exists
from reliability_studio.tasks import service as tasks
from reliability_studio.tasks.schemas import TaskCreate, TaskOut, TaskStatus, TaskUpdate

router = APIRouter(
    prefix="/api/incidents/{incident_id}/tasks", tags=["tasks"], responses=PROBLEM_RESPONSES
)


@router.get("", response_model=Page[TaskOut])
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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskOut)
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
    return TaskOut.model_validate(task)


@router.get("/{task_id}", response_model=TaskOut)
async def get_task(
    incident_id: uuid.UUID, task_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> TaskOut:
    """One action item."""
    return TaskOut.model_validate(
        await tasks.get_task(session, organization_id, incident_id, task_id)
    )


@router.patch("/{task_id}", response_model=TaskOut)
async def update_task(
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
    session: Session,
    organization_id: OrganizationId,
) -> TaskOut:
    """Change an action item; `"status": "done"` records `completed_at`."""
    task = await tasks.update_task(session, organization_id, incident_id, task_id, body)
    return TaskOut.model_validate(task)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(
    incident_id: uuid.UUID, task_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> None:
    """Remove an action item."""
    await tasks.delete_task(session, organization_id, incident_id, task_id)
