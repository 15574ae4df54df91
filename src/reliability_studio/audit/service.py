"""Reading the audit log. Writing it is capture.py's job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.audit.models import AuditEntry
from reliability_studio.audit.schemas import AuditEntryOut


@dataclass(frozen=True)
class AuditFilters:
    """What `GET /api/audit` narrows the log to; None: no condition."""

    actor: str | None = None  # a name or an id
    actions: list[str] | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    request_id: str | None = None


async def list_entries(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest, filters: AuditFilters
) -> Page[AuditEntryOut]:
    """The organization's audit entries, newest first."""
    query = select(AuditEntry).where(AuditEntry.organization_id == organization_id)
    if filters.actor is not None:
        query = query.where(
            or_(AuditEntry.actor_name == filters.actor, AuditEntry.actor_id == filters.actor)
        )
    if filters.actions:
        query = query.where(AuditEntry.action.in_(filters.actions))
    if filters.resource_type is not None:
        query = query.where(AuditEntry.resource_type == filters.resource_type)
    if filters.resource_id is not None:
        query = query.where(AuditEntry.resource_id == filters.resource_id)
    if filters.since is not None:
        query = query.where(AuditEntry.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.occurred_at < filters.until)
    if filters.request_id is not None:
        query = query.where(AuditEntry.request_id == filters.request_id)
    return await fetch_page(
        session,
        query,
        page,
        sort=AuditEntry.occurred_at,
        row_id=AuditEntry.id,
        render=AuditEntryOut.model_validate,
        descending=True,
    )
