"""HTTP layer of `/api/incidents/{id}/analyze`, `/analysis` and `/evidence`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from reliability_studio.analysis import service as analyses
from reliability_studio.analysis.schemas import AnalysisOut, EvidenceOut
from reliability_studio.api.deps import Actor, OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES

router = APIRouter(tags=["analysis"], responses=PROBLEM_RESPONSES)


@router.post(
    "/api/incidents/{incident_id}/analyze",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnalysisOut,
)
async def analyze(
    incident_id: uuid.UUID,
    request: Request,
    response: Response,
    session: Session,
    organization_id: OrganizationId,
    actor: Actor,
) -> AnalysisOut:
    """Gather evidence again and re-rank the hypotheses, in the background."""
    run = await analyses.request_analysis(session, organization_id, incident_id, actor)
    runner = getattr(request.app.state, "analysis_runner", None)
    if runner is not None:
        runner.wake()
    response.headers["Location"] = f"/api/incidents/{incident_id}/analysis"
    return analyses.analysis_out(run)


@router.get("/api/incidents/{incident_id}/analysis", response_model=AnalysisOut)
async def get_analysis(
    incident_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> AnalysisOut:
    """The latest analysis: its state, each backend's, ranked hypotheses, similar incidents."""
    run = await analyses.latest_analysis(session, organization_id, incident_id)
    return analyses.analysis_out(run)


@router.get("/api/incidents/{incident_id}/evidence", response_model=Page[EvidenceOut])
async def list_evidence(
    incident_id: uuid.UUID, session: Session, organization_id: OrganizationId, page: PageParams
) -> Page[EvidenceOut]:
    """Every finding gathered for the incident, oldest first."""
    return await analyses.list_evidence(session, organization_id, incident_id, page)
