"""The slos, slo_snapshots and slo_alerts tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
    one_of,
    utcnow,
)

SLO_STATUSES = ("healthy", "at_risk", "breached", "no_data", "unknown")
CALENDAR_PERIODS = ("month", "quarter")
ALERT_SEVERITIES = ("page", "ticket")


class SLO(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """A service level objective for one service.

    Without an `sli` it is manual: callers set `error_budget_remaining` and `status`.
    With one, the SLO engine computes those and the other figures below.
    """

    __tablename__ = "slos"
    __table_args__ = (
        UniqueConstraint("service_id", "name"),
        CheckConstraint("objective > 0 AND objective < 100", name="objective"),
        CheckConstraint("window_days BETWEEN 1 AND 365", name="window_days"),
        CheckConstraint(one_of("status", SLO_STATUSES), name="status"),
        CheckConstraint(
            "calendar_period IS NULL OR " + one_of("calendar_period", CALENDAR_PERIODS),
            name="calendar_period",
        ),
        Index("ix_slos_org_created", "organization_id", "created_at", "id"),
        Index("ix_slos_org_status_created", "organization_id", "status", "created_at", "id"),
        Index("ix_slos_next_evaluation_at", "next_evaluation_at"),
    )

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    objective: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int]
    # A calendar window (this month or quarter, in `timezone`) instead of a rolling one.
    calendar_period: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    sli: Mapped[dict[str, Any] | None]

    error_budget_remaining: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    # Computed by the engine; kept when Prometheus cannot be reached (then `stale`).
    sli_value: Mapped[float | None] = mapped_column(Float)
    budget_consumed: Mapped[float | None] = mapped_column(Float)
    burn_rates: Mapped[dict[str, Any] | None]
    time_to_exhaustion_seconds: Mapped[float | None] = mapped_column(Float)
    good_events: Mapped[float | None] = mapped_column(Float)
    total_events: Mapped[float | None] = mapped_column(Float)
    evaluated_at: Mapped[datetime | None]
    stale: Mapped[bool] = mapped_column(default=False, server_default=false())
    evaluation_error: Mapped[str | None] = mapped_column(Text)
    # The durable schedule: due SLOs are claimed from here by any worker.
    next_evaluation_at: Mapped[datetime | None]
    last_snapshot_at: Mapped[datetime | None]


class SLOSnapshot(UUIDPrimaryKey, OrganizationOwned, Base):
    """One evaluation kept for history charts."""

    __tablename__ = "slo_snapshots"
    __table_args__ = (Index("ix_slo_snapshots_slo_evaluated", "slo_id", "evaluated_at", "id"),)

    slo_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"))
    evaluated_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    sli_value: Mapped[float | None] = mapped_column(Float)
    error_budget_remaining: Mapped[float | None] = mapped_column(Float)
    budget_consumed: Mapped[float | None] = mapped_column(Float)
    burn_rates: Mapped[dict[str, Any] | None]
    good_events: Mapped[float | None] = mapped_column(Float)
    total_events: Mapped[float | None] = mapped_column(Float)


class SLOAlert(UUIDPrimaryKey, OrganizationOwned, Base):
    """A multi-window burn-rate alert, from the moment it fires until it clears."""

    __tablename__ = "slo_alerts"
    __table_args__ = (
        CheckConstraint(one_of("severity", ALERT_SEVERITIES), name="severity"),
        Index("ix_slo_alerts_slo_started", "slo_id", "started_at", "id"),
        # At most one active alert per SLO and severity: the same burn never pages twice.
        Index(
            "uq_slo_alerts_active",
            "slo_id",
            "severity",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    slo_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"))
    severity: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(32))
    factor: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    burn_rates: Mapped[dict[str, Any] | None]
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
