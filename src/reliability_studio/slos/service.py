"""SLO operations. Budgets and status are set by callers until the SLO engine computes them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import ConflictError, NotFoundError, UnprocessableError
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.slos.models import SLO
from reliability_studio.slos.schemas import SLOCreate, SLOOut, SLOStatus, SLOUpdate


async def create_slo(session: AsyncSession, organization_id: uuid.UUID, data: SLOCreate) -> SLO:
    """Add an SLO to an existing service; names are unique per service (409)."""
    await _ensure_service(session, organization_id, data.service_id)
    now = utcnow()
    slo = SLO(
        id=uuid.uuid4(),
        organization_id=organization_id,
        created_at=now,
        updated_at=now,
        **data.model_dump(),
    )
    session.add(slo)
    await _commit_unique_name(session, data.name)
    return slo


async def get_slo(session: AsyncSession, organization_id: uuid.UUID, slo_id: uuid.UUID) -> SLO:
    """The SLO, or 404."""
    slo = await session.scalar(
        select(SLO).where(SLO.id == slo_id, SLO.organization_id == organization_id)
    )
    if slo is None:
        raise NotFoundError(f"SLO {slo_id} does not exist")
    return slo


async def list_slos(
    session: AsyncSession,
    organization_id: uuid.UUID,
    page: PageRequest,
    *,
    service_id: uuid.UUID | None = None,
    status: SLOStatus | None = None,
) -> Page[SLOOut]:
    """SLOs in the order they were created, filtered by service and status."""
    query = select(SLO).where(SLO.organization_id == organization_id)
    if service_id is not None:
        query = query.where(SLO.service_id == service_id)
    if status is not None:
        query = query.where(SLO.status == status)
    return await fetch_page(
        session, query, page, sort=SLO.created_at, row_id=SLO.id, render=SLOOut.model_validate
    )


async def update_slo(
    session: AsyncSession, organization_id: uuid.UUID, slo_id: uuid.UUID, data: SLOUpdate
) -> SLO:
    """Change the given fields, e.g. the seed's `error_budget_remaining` and `status`."""
    changes = patch_changes(data, "name", "objective", "window_days", "status")
    slo = await get_slo(session, organization_id, slo_id)
    for field, value in changes.items():
        setattr(slo, field, value)
    await _commit_unique_name(session, slo.name)
    return slo


async def delete_slo(session: AsyncSession, organization_id: uuid.UUID, slo_id: uuid.UUID) -> None:
    """Remove an SLO."""
    slo = await get_slo(session, organization_id, slo_id)
    await session.delete(slo)
    await session.commit()


async def _ensure_service(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID
) -> None:
    found = await session.scalar(
        select(Service.id).where(
            Service.id == service_id, Service.organization_id == organization_id
        )
    )
    if found is None:
        raise UnprocessableError(f"service {service_id} does not exist", field="service_id")


async def _commit_unique_name(session: AsyncSession, name: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(f"this service already has an SLO named {name!r}") from None
