"""The analysis_runs and evidence tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    JSONDocument,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    one_of,
)

RUN_STATUSES = ("pending", "running", "done", "failed")


class AnalysisRun(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """One analysis of an incident: queued with the incident (or on demand), claimed by a
    worker with a lease, and finished with its hypotheses. A worker that dies leaves the
    lease to expire, and the run is claimed again: a restart resumes it."""

    __tablename__ = "analysis_runs"
    __table_args__ = (
        CheckConstraint(one_of("status", RUN_STATUSES), name="status"),
        Index("ix_analysis_runs_incident_created", "incident_id", "created_at", "id"),
        # The queue: only unfinished runs are in this index.
        Index(
            "ix_analysis_runs_due",
            "due_at",
            postgresql_where=text("status IN ('pending', 'running')"),
            sqlite_where=text("status IN ('pending', 'running')"),
        ),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    # When a worker may take it: now for a new run, the lease's end for a running one.
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Per backend: "ok", "not_configured", or "unavailable: <why>".
    backends: Mapped[dict[str, Any] | None]
    hypotheses: Mapped[dict[str, Any] | None]
    similar_incidents: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class Evidence(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """One finding of an analysis, kept with the incident (and on its timeline)."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_incident_created", "incident_id", "created_at", "id"),)

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"))
    timeline_event_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(200))
    component: Mapped[str | None] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    score: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime | None]
    query: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    signals: Mapped[list[str]] = mapped_column(JSONDocument)
