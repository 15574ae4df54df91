"""HTTP layer of `/api/slos`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session, reads_only
from reliability_studio.api.fields import Timestamp
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES, ConflictError
from reliability_studio.db.base import utcnow
from reliability_studio.slos import service as slos
from reliability_studio.slos.checks import check_sli
from reliability_studio.slos.models import SLO
from reliability_studio.slos.runner import evaluate_and_store
from reliability_studio.slos.schemas import (
    SLOAlertOut,
    SLOCreate,
    SLOOut,
    SLOSnapshotOut,
    SLOStatus,
    SLOUpdate,
)

router = APIRouter(prefix="/api/slos", tags=["slos"], responses=PROBLEM_RESPONSES)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=SLOOut, responses=etag_responses(201)
)
async def create_slo(
    body: SLOCreate,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
    request: Request,
) -> SLOOut:
    """Add an SLO to a service (422 if the service does not exist).

    With an `sli`, the engine measures it within one evaluation interval; the SLI's
    queries are first checked against Prometheus when it can be reached.
    """
    if body.sli is not None:
        body.sli = await check_sli(request.app.state.prometheus_checker, body.sli)
    slo = await slos.create_slo(session, organization_id, body)
    response.headers["Location"] = f"/api/slos/{slo.id}"
    return with_etag(response, SLOOut.model_validate(slo))


@router.get("", response_model=Page[SLOOut])
@reads_only
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


@router.get("/{slo_id}", response_model=SLOOut, responses=etag_responses(200))
@reads_only
async def get_slo(
    slo_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> SLOOut:
    """One SLO. Its version (`ETag`) also moves when the engine stores a new evaluation."""
    slo = await slos.get_slo(session, organization_id, slo_id)
    return with_etag(response, SLOOut.model_validate(slo))


@router.patch("/{slo_id}", response_model=SLOOut, responses=etag_responses(200, conditional=True))
async def update_slo(
    slo_id: uuid.UUID,
    body: SLOUpdate,
    session: Session,
    organization_id: OrganizationId,
    request: Request,
    if_match: IfMatch,
    response: Response,
) -> SLOOut:
    """Change an SLO, e.g. `{"error_budget_remaining": 85.5, "status": "healthy"}` for a
    manual one (409 for an SLO with an `sli`, whose figures the engine computes; 412 for
    a stale `If-Match`)."""
    if body.sli is not None:  # before the lock: Prometheus may take its time answering
        body.sli = await check_sli(request.app.state.prometheus_checker, body.sli)
    await _lock(session, if_match, organization_id, slo_id)
    slo = await slos.update_slo(session, organization_id, slo_id, body)
    return with_etag(response, SLOOut.model_validate(slo))


@router.delete(
    "/{slo_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_slo(
    slo_id: uuid.UUID, session: Session, organization_id: OrganizationId, if_match: IfMatch
) -> None:
    """Remove an SLO (412: stale `If-Match`)."""
    await _lock(session, if_match, organization_id, slo_id)
    await slos.delete_slo(session, organization_id, slo_id)


async def _lock(
    session: Session, if_match: IfMatch, organization_id: OrganizationId, slo_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        SLO,
        SLO.id == slo_id,
        SLO.organization_id == organization_id,
        what=f"SLO {slo_id}",
    )


@router.post("/{slo_id}/evaluate", response_model=SLOOut)
async def evaluate_slo(
    slo_id: uuid.UUID, session: Session, organization_id: OrganizationId, request: Request
) -> SLOOut:
    """Measure the SLO now and return the result (409 for a manual SLO)."""
    slo = await slos.get_slo(session, organization_id, slo_id)
    if slo.sli is None:
        raise ConflictError("this SLO has no sli; it is manual and has nothing to evaluate")
    await session.commit()  # end this read before the engine writes (SQLite: one writer)
    state = request.app.state
    await evaluate_and_store(
        state.sessionmaker, state.prometheus, state.settings, [slo.id], utcnow()
    )
    await session.refresh(slo)
    return SLOOut.model_validate(slo)


@router.get("/{slo_id}/history", response_model=Page[SLOSnapshotOut])
@reads_only
async def slo_history(
    slo_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    since: Annotated[Timestamp | None, Query(alias="from", description="From this time.")] = None,
    until: Annotated[Timestamp | None, Query(alias="to", description="Before this time.")] = None,
) -> Page[SLOSnapshotOut]:
    """Stored evaluations for charts, oldest first (kept SLO_HISTORY_RETENTION_DAYS)."""
    return await slos.list_history(session, organization_id, slo_id, page, since=since, until=until)


@router.get("/{slo_id}/alerts", response_model=Page[SLOAlertOut])
@reads_only
async def slo_alerts(
    slo_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    active: Annotated[bool | None, Query(description="Only active (true) or past (false).")] = None,
) -> Page[SLOAlertOut]:
    """Current and past burn-rate alerts, newest first."""
    return await slos.list_alerts(session, organization_id, slo_id, page, active=active)
