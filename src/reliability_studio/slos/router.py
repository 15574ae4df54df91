"""HTTP layer of `/api/slos`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.slos import service as slos
from reliability_studio.slos.schemas import SLOCreate, SLOOut, SLOStatus, SLOUpdate

router = APIRouter(prefix="/api/slos", tags=["slos"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SLOOut)
async def create_slo(
    body: SLOCreate, session: Session, organization_id: OrganizationId, response: Response
) -> SLOOut:
    """Add an SLO to a service (422 if the service does not exist)."""
    slo = await slos.create_slo(session, organization_id, body)
    response.headers["Location"] = f"/api/slos/{slo.id}"
    return SLOOut.model_validate(slo)


@router.get("", response_model=Page[SLOOut])
async def list_slos(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    service_id: uuid.UUID | None = None,
    status: SLOStatus | None = None,
) -> Page[SLOOut]:
    """List SLOs, filtered by `service_id` and `status`."""
    return await slos.list_slos(
        session, organization_id, page, service_id=service_id, status=status
    )


@router.get("/{slo_id}", response_model=SLOOut)
async def get_slo(slo_id: uuid.UUID, session: Session, organization_id: OrganizationId) -> SLOOut:
    """One SLO."""
    return SLOOut.model_validate(await slos.get_slo(session, organization_id, slo_id))


@router.patch("/{slo_id}", response_model=SLOOut)
async def update_slo(
    slo_id: uuid.UUID, body: SLOUpdate, session: Session, organization_id: OrganizationId
) -> SLOOut:
    """Change an SLO, e.g. `{"error_budget_remaining": 85.5, "status": "healthy"}`."""
    return SLOOut.model_validate(await slos.update_slo(session, organization_id, slo_id, body))


@router.delete("/{slo_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_slo(slo_id: uuid.UUID, session: Session, organization_id: OrganizationId) -> None:
    """Remove an SLO."""
    await slos.delete_slo(session, organization_id, slo_id)
