"""Task (action item) operations."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import NotFoundError
from reliability_studio.db.base import utcnow
from reliability_studio.incidents.models import Incident
from reliability_studio.notify.outbox import enqueue_incident_events
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.tasks.schemas import TaskCreate, TaskOut, TaskUpdate


async def create_task(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, data: TaskCreate
) -> IncidentTask:
    """Add an action item to an incident (the incident must exist)."""
    now = utcnow()
    task = IncidentTask(
        id=uuid.uuid4(),
        organization_id=organization_id,
        incident_id=incident_id,
        created_at=now,
        updated_at=now,
        completed_at=now if data.status == "done" else None,
        **data.model_dump(),
    )
    session.add(task)
    if task.assignee:
        await _notify_assignment(session, task)
    await session.commit()
    return task


async def _notify_assignment(session: AsyncSession, task: IncidentTask) -> None:
    """Queue `task.assigned` (uncommitted), so the assignee hears of it."""
    incident = await session.get(Incident, task.incident_id)
    if incident is None:
        return
    await enqueue_incident_events(
        session,
        task.organization_id,
        [("task.assigned", incident)],
        title=f"Task for {task.assignee}: {task.title}",
        details={
            "task": {
                "id": str(task.id),
                "title": task.title,
                "assignee": task.assignee,
                "due_at": task.due_at.isoformat() if task.due_at else None,
            }
        },
    )


async def get_task(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, task_id: uuid.UUID
) -> IncidentTask:
    """The task, or 404."""
    task = await session.scalar(
        select(IncidentTask).where(
            IncidentTask.id == task_id,
            IncidentTask.incident_id == incident_id,
            IncidentTask.organization_id == organization_id,
        )
    )
    if task is None:
        raise NotFoundError(f"task {task_id} does not exist on incident {incident_id}")
    return task


async def list_tasks(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    page: PageRequest,
    *,
    status: str | None = None,
) -> Page[TaskOut]:
    """An incident's tasks in the order they were added."""
    query = select(IncidentTask).where(
        IncidentTask.incident_id == incident_id, IncidentTask.organization_id == organization_id
    )
    if status is not None:
        query = query.where(IncidentTask.status == status)
    return await fetch_page(
        session,
        query,
        page,
        sort=IncidentTask.created_at,
        row_id=IncidentTask.id,
        render=TaskOut.model_validate,
    )


async def update_task(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskUpdate,
) -> IncidentTask:
    """Change the given fields; marking a task done records when."""
    changes = patch_changes(data, "title", "status")
    task = await get_task(session, organization_id, incident_id, task_id)
    if "status" in changes and changes["status"] != task.status:
        task.completed_at = utcnow() if changes["status"] == "done" else None
    assignee_before = task.assignee
    for field, value in changes.items():
        setattr(task, field, value)
    if task.assignee and task.assignee != assignee_before:
        await _notify_assignment(session, task)
    await session.commit()
    return task


async def delete_task(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, task_id: uuid.UUID
) -> None:
    """Remove a task."""
    task = await get_task(session, organization_id, incident_id, task_id)
    await session.delete(task)
    await session.commit()
