"""Response bodies of an incident's analysis and evidence."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class HypothesisOut(BaseModel):
    """A suspected root cause, with the evidence behind it and why it ranks here."""

    service: str
    component: str | None
    kind: str = Field(
        description="deploy, resource_exhaustion, dependency_failure, error_surge, "
        "saturation or config"
    )
    score: float = Field(ge=0, le=1)
    evidence_ids: list[uuid.UUID]
    explanation: str
    started_at: datetime | None
    parts: dict[str, float] = Field(description="What the score is made of.")


class SimilarIncidentOut(BaseModel):
    """A past incident with similar text."""

    id: uuid.UUID
    title: str
    similarity: float


class AnalysisOut(BaseModel):
    """The latest analysis of an incident."""

    run_id: uuid.UUID
    incident_id: uuid.UUID
    status: str = Field(description="pending, running, done or failed")
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None
    attempts: int
    backends: dict[str, str] = Field(
        description="Per backend: ok, not_configured, or unavailable: <why>."
    )
    hypotheses: list[HypothesisOut]
    similar_incidents: list[SimilarIncidentOut]
    error: str | None


class EvidenceOut(BaseModel):
    """One finding kept with the incident."""

    id: uuid.UUID
    run_id: uuid.UUID
    timeline_event_id: uuid.UUID | None
    kind: str
    source: str
    service: str
    component: str | None
    title: str
    score: float
    started_at: datetime | None
    query: str | None
    link: str | None
    figures: dict[str, Any]
    signals: list[str]
    created_at: datetime
