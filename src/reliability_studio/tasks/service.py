"""Task (action item) operations."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, encode_cursor, split_page
from reliability_studio.api.problems import NotFoundError, UnprocessableError
from reliability_studio.api.queries import cursor_datetime
from reliability_studio.db.base import utcnow
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
    await session.commit()
    return task


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
    if page.after is not None:
        after_time, after_id = page.after
        query = query.where(
            tuple_(IncidentTask.created_at, IncidentTask.id)
            > tuple_(cursor_datetime(after_time), after_id)
        )
    query = query.order_by(IncidentTask.created_at, IncidentTask.id).limit(page.limit + 1)
    rows = (await session.scalars(query)).all()
    items, more = split_page(rows, page.limit)
    return Page(
        items=[TaskOut.model_validate(row) for row in items],
        next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None,
    )


async def update_task(
    session: AsyncSession,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID,
    task_id: uuid.UUID,
    data: TaskUpdate,
) -> IncidentTask:
    """Change the given fields; marking a task done records when."""
    changes = data.model_dump(exclude_unset=True)
    for required in ("title", "status"):
        if required in changes and changes[required] is None:
            raise UnprocessableError(f"{required} cannot be null", field=required)
    task = await get_task(session, organization_id, incident_id, task_id)
    if "status" in changes and changes["status"] != task.status:
        task.completed_at = utcnow() if changes["status"] == "done" else None
    for field, value in changes.items():
        setattr(task, field, value)
    await session.commit()
    return task


async def delete_task(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, task_id: uuid.UUID
) -> None:
    """Remove a task."""
    task = await get_task(session, organization_id, incident_id, task_id)
    await session.delete(task)
    await session.commit()
