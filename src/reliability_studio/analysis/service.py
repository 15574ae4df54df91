"""Reading and requesting an incident's analysis."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.analysis.models import AnalysisRun, Evidence
from reliability_studio.analysis.queue import queue_run
from reliability_studio.analysis.schemas import (
    AnalysisOut,
    EvidenceOut,
    HypothesisOut,
    SimilarIncidentOut,
)
from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.problems import NotFoundError
from reliability_studio.incidents.service import ensure_incident_exists


async def request_analysis(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, actor: str
) -> AnalysisRun:
    """Queue a new analysis of the incident (404 if there is no such incident)."""
    await ensure_incident_exists(session, organization_id, incident_id)
    run = queue_run(session, organization_id, incident_id, actor)
    await session.commit()
    return run


async def latest_analysis(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID
) -> AnalysisRun:
    """The newest run of the incident, or 404."""
    await ensure_incident_exists(session, organization_id, incident_id)
    run = await session.scalar(
        select(AnalysisRun)
        .where(
            AnalysisRun.incident_id == incident_id,
            AnalysisRun.organization_id == organization_id,
        )
        .order_by(AnalysisRun.created_at.desc(), AnalysisRun.id.desc())
        .limit(1)
    )
    if run is None:
        raise NotFoundError(f"incident {incident_id} has not been analysed")
    return run


async def list_evidence(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID, page: PageRequest
) -> Page[EvidenceOut]:
    """The incident's evidence, oldest first."""
    await ensure_incident_exists(session, organization_id, incident_id)
    query = select(Evidence).where(
        Evidence.incident_id == incident_id, Evidence.organization_id == organization_id
    )
    return await fetch_page(
        session,
        query,
        page,
        sort=Evidence.created_at,
        row_id=Evidence.id,
        render=lambda row: EvidenceOut.model_validate(row, from_attributes=True),
    )


def analysis_out(run: AnalysisRun) -> AnalysisOut:
    """The API shape of a run."""
    return AnalysisOut(
        run_id=run.id,
        incident_id=run.incident_id,
        status=run.status,
        requested_by=run.requested_by,
        requested_at=run.created_at,
        finished_at=run.finished_at,
        attempts=run.attempts,
        backends={str(k): str(v) for k, v in (run.backends or {}).items()},
        hypotheses=[
            HypothesisOut.model_validate(item) for item in (run.hypotheses or {}).get("items", [])
        ],
        similar_incidents=[
            SimilarIncidentOut.model_validate(item)
            for item in (run.similar_incidents or {}).get("items", [])
        ],
        error=run.error,
    )
