"""Queueing an analysis: a row, added in the caller's transaction. Kept apart from the
runner so that creating an incident does not import the analysers."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.analysis.models import AnalysisRun
from reliability_studio.db.base import utcnow


def queue_run(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, requested_by: str
) -> AnalysisRun:
    """Add a pending run to the session (committed with the caller's change)."""
    now = utcnow()
    run = AnalysisRun(
        id=uuid.uuid4(),
        organization_id=organization_id,
        incident_id=incident_id,
        status="pending",
        requested_by=requested_by,
        due_at=now,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    return run
