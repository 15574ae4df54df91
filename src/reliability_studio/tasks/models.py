"""The incident_tasks table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
    one_of,
)

TASK_STATUSES = ("open", "done")


class IncidentTask(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """An action item that belongs to an incident."""

    __tablename__ = "incident_tasks"
    __table_args__ = (
        CheckConstraint(one_of("status", TASK_STATUSES), name="status"),
        Index("ix_incident_tasks_incident_created", "incident_id", "created_at", "id"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="open")
    assignee: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
