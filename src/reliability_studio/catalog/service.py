"""Catalog operations: plain functions on a session."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import ConflictError, NotFoundError
from reliability_studio.api.queries import commit_unique, contains_text
from reliability_studio.catalog.models import Service
from reliability_studio.catalog.schemas import ServiceCreate, ServiceOut, ServiceUpdate
from reliability_studio.catalog.telemetry import TelemetryBindings
from reliability_studio.db.base import utcnow
from reliability_studio.incidents.models import IncidentService
from reliability_studio.slos.models import SLO


async def create_service(
    session: AsyncSession, organization_id: uuid.UUID, data: ServiceCreate
) -> Service:
    """Add a service; 409 when the organization already has one of that name."""
    now = utcnow()  # one instant, so that a new service's updated_at equals its created_at
    fields = data.model_dump(exclude={"telemetry"})
    service = Service(
        organization_id=organization_id,
        created_at=now,
        updated_at=now,
        telemetry=_stored_telemetry(data.telemetry),
        **fields,
    )
    session.add(service)
    await commit_unique(session, f"a service named {data.name!r} already exists")
    return service


async def get_service(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID
) -> Service:
    """The service, or 404."""
    service = await session.scalar(
        select(Service).where(Service.id == service_id, Service.organization_id == organization_id)
    )
    if service is None:
        raise NotFoundError(f"service {service_id} does not exist")
    return service


async def list_services(
    session: AsyncSession,
    organization_id: uuid.UUID,
    page: PageRequest,
    *,
    team: str | None = None,
    q: str | None = None,
) -> Page[ServiceOut]:
    """Services ordered by name, filtered by team and a text query on name and description."""
    query = select(Service).where(Service.organization_id == organization_id)
    if team is not None:
        query = query.where(Service.team == team)
    if q:
        query = query.where(contains_text(q, Service.name, Service.description))
    return await fetch_page(
        session, query, page, sort=Service.name, row_id=Service.id, render=ServiceOut.model_validate
    )


async def update_service(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID, data: ServiceUpdate
) -> Service:
    """Change the given fields; a new name must still be unique."""
    service = await get_service(session, organization_id, service_id)
    changes = patch_changes(data, "name")
    if "telemetry" in changes:
        changes["telemetry"] = _stored_telemetry(data.telemetry)
    for field, value in changes.items():
        setattr(service, field, value)
    await commit_unique(session, f"a service named {service.name!r} already exists")
    return service


async def delete_service(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID
) -> None:
    """Remove a service that no incident or SLO refers to; 409 otherwise.

    Incidents are the system of record and are never rewritten by a catalog change.
    """
    service = await get_service(session, organization_id, service_id)
    incidents = await session.scalar(
        select(func.count()).where(IncidentService.service_id == service_id)
    )
    slos = await session.scalar(select(func.count()).where(SLO.service_id == service_id))
    if incidents or slos:
        raise ConflictError(
            f"service {service.name!r} is referred to by {incidents} incident(s) and "
            f"{slos} SLO(s); delete its SLOs first — incidents keep their services"
        )
    await session.delete(service)
    try:
        await session.commit()
    except IntegrityError:  # an incident linked it meanwhile
        await session.rollback()
        raise ConflictError(f"service {service.name!r} is in use; try again") from None


def _stored_telemetry(bindings: TelemetryBindings | None) -> dict[str, Any] | None:
    """What is stored: only the bindings that were set (null: all derived from the name)."""
    if bindings is None:
        return None
    return bindings.model_dump(exclude_none=True) or None
