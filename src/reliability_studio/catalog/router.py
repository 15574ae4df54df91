"""HTTP layer of `/api/services`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session, reads_only
from reliability_studio.api.fields import NoNul
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.catalog import service as catalog
from reliability_studio.catalog.models import Service
from reliability_studio.catalog.schemas import ServiceCreate, ServiceOut, ServiceUpdate

router = APIRouter(prefix="/api/services", tags=["services"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ServiceOut,
    responses=etag_responses(201),
)
async def create_service(
    body: ServiceCreate, session: Session, organization_id: OrganizationId, response: Response
) -> ServiceOut:
    """Add a service to the catalog. Names are unique within the organization (409)."""
    service = await catalog.create_service(session, organization_id, body)
    response.headers["Location"] = f"/api/services/{service.id}"
    return with_etag(response, ServiceOut.model_validate(service))


@router.get("", response_model=Page[ServiceOut])
@reads_only
async def list_services(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    team: Annotated[
        Annotated[str, NoNul] | None, Query(max_length=200, description="Exact team name.")
    ] = None,
    q: Annotated[
        Annotated[str, NoNul] | None,
        Query(max_length=200, description="Text in name or description."),
    ] = None,
) -> Page[ServiceOut]:
    """List services by name."""
    return await catalog.list_services(session, organization_id, page, team=team, q=q)


@router.get("/{service_id}", response_model=ServiceOut, responses=etag_responses(200))
@reads_only
async def get_service(
    service_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> ServiceOut:
    """One service."""
    service = await catalog.get_service(session, organization_id, service_id)
    return with_etag(response, ServiceOut.model_validate(service))


@router.patch(
    "/{service_id}", response_model=ServiceOut, responses=etag_responses(200, conditional=True)
)
async def update_service(
    service_id: uuid.UUID,
    body: ServiceUpdate,
    session: Session,
    organization_id: OrganizationId,
    if_match: IfMatch,
    response: Response,
) -> ServiceOut:
    """Change a service's name, team, repository or description (412: stale `If-Match`)."""
    await _lock(session, if_match, organization_id, service_id)
    service = await catalog.update_service(session, organization_id, service_id, body)
    return with_etag(response, ServiceOut.model_validate(service))


@router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_service(
    service_id: uuid.UUID, session: Session, organization_id: OrganizationId, if_match: IfMatch
) -> None:
    """Remove a service that no incident or SLO refers to (409 otherwise; 412: stale
    `If-Match`)."""
    await _lock(session, if_match, organization_id, service_id)
    await catalog.delete_service(session, organization_id, service_id)


async def _lock(
    session: Session, if_match: IfMatch, organization_id: OrganizationId, service_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        Service,
        Service.id == service_id,
        Service.organization_id == organization_id,
        what=f"service {service_id}",
    )
