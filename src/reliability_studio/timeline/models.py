"""The timeline_events table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, OrganizationOwned, UUIDPrimaryKey, utcnow


class TimelineEvent(UUIDPrimaryKey, OrganizationOwned, Base):
    """Something that happened during an incident. Append-only."""

    __tablename__ = "timeline_events"
    __table_args__ = (
        Index("ix_timeline_events_incident_occurred", "incident_id", "occurred_at", "id"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # `metadata` is reserved on declarative classes, hence the attribute name.
    event_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
