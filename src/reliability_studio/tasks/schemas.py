"""Request and response bodies of `/api/incidents/{id}/tasks`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import LongText, Person, Timestamp, Title

TaskStatus = Literal["open", "done"]


class TaskCreate(BaseModel):
    """A new action item."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: LongText | None = None
    status: TaskStatus = "open"
    assignee: Person | None = None
    due_at: Timestamp | None = None


class TaskUpdate(BaseModel):
    """Fields to change; `null` clears `description`, `assignee` or `due_at`."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: LongText | None = None
    status: TaskStatus | None = None
    assignee: Person | None = None
    due_at: Timestamp | None = None


class TaskOut(BaseModel):
    """An action item of an incident."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    incident_id: uuid.UUID
    title: str
    description: str | None
    status: TaskStatus
    assignee: str | None
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion
