"""The slos table."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, OrganizationOwned, Timestamps, UUIDPrimaryKey, one_of

SLO_STATUSES = ("healthy", "at_risk", "breached", "no_data", "unknown")


class SLO(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """A service level objective for one service."""

    __tablename__ = "slos"
    __table_args__ = (
        UniqueConstraint("service_id", "name"),
        CheckConstraint("objective > 0 AND objective < 100", name="objective"),
        CheckConstraint("window_days BETWEEN 1 AND 365", name="window_days"),
        CheckConstraint(one_of("status", SLO_STATUSES), name="status"),
        Index("ix_slos_org_created", "organization_id", "created_at", "id"),
        Index("ix_slos_org_status_created", "organization_id", "status", "created_at", "id"),
    )

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    objective: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int]
    error_budget_remaining: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
