"""SLO operations. Manual SLOs take budget and status from callers; SLOs with an `sli` are
scheduled for the engine, which computes them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import (
    ConflictError,
    FieldError,
    NotFoundError,
    UnprocessableError,
)
from reliability_studio.api.queries import commit_unique
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.slos.alerting import active_alerts, resolve_alert
from reliability_studio.slos.models import SLO, SLOAlert, SLOSnapshot
from reliability_studio.slos.schemas import (
    SLOAlertOut,
    SLOCreate,
    SLOOut,
    SLOSnapshotOut,
    SLOStatus,
    SLOUpdate,
)

# Set by callers only while an SLO has no sli (the seed's PATCH); the engine owns them after.
COMPUTED_BY_ENGINE = ("error_budget_remaining", "status")
ENGINE_FIGURES = (
    "error_budget_remaining",
    "sli_value",
    "budget_consumed",
    "burn_rates",
    "time_to_exhaustion_seconds",
    "good_events",
    "total_events",
    "evaluated_at",
    "evaluation_error",
)
RESCHEDULING_FIELDS = {"sli", "objective", "window_days", "calendar_period", "timezone"}


async def create_slo(session: AsyncSession, organization_id: uuid.UUID, data: SLOCreate) -> SLO:
    """Add an SLO to an existing service; names are unique per service (409)."""
    await _ensure_service(session, organization_id, data.service_id)
    if data.sli is not None:
        # As in a PATCH: the engine computes these for an SLO with an sli.
        hand_set = {"error_budget_remaining": data.error_budget_remaining is not None}
        hand_set["status"] = data.status != "unknown"
        for field in COMPUTED_BY_ENGINE:
            if hand_set[field]:
                raise ConflictError(
                    f"{field} is computed by the SLO engine for an SLO with an sli; "
                    "leave it out, or create the SLO without an sli to set it by hand",
                    errors=[FieldError(field=field, location="body", message="computed")],
                )
    now = utcnow()
    slo = SLO(
        id=uuid.uuid4(),
        organization_id=organization_id,
        created_at=now,
        updated_at=now,
        next_evaluation_at=now if data.sli is not None else None,
        **data.model_dump(),
    )
    session.add(slo)
    await commit_unique(session, f"this service already has an SLO named {data.name!r}")
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
    changes = patch_changes(data, "name", "objective", "window_days", "status", "timezone")
    slo = await get_slo(session, organization_id, slo_id)
    computed = changes.get("sli", slo.sli) is not None
    for field in COMPUTED_BY_ENGINE:
        if field in changes and computed:
            raise ConflictError(
                f"{field} is computed by the SLO engine for an SLO with an sli; "
                "remove the sli (PATCH sli: null) to set it by hand",
                errors=[FieldError(field=field, location="body", message="computed")],
            )
    if not computed and slo.sli is not None:
        # Made manual: first forget what the engine computed, so that a budget and status
        # sent in the same PATCH are kept.
        _forget_computed_figures(slo)
        await _resolve_active_alerts(session, slo)
    for field, value in changes.items():
        setattr(slo, field, value)
    if computed and RESCHEDULING_FIELDS & changes.keys():
        slo.next_evaluation_at = utcnow()  # the definition changed: measure it again now
    await commit_unique(session, f"this service already has an SLO named {slo.name!r}")
    return slo


def _forget_computed_figures(slo: SLO) -> None:
    """A manual SLO again: nothing the engine computed is current any more."""
    slo.next_evaluation_at = None
    slo.status = "unknown"
    for field in ENGINE_FIGURES:
        setattr(slo, field, None)
    slo.stale = False


async def _resolve_active_alerts(session: AsyncSession, slo: SLO) -> None:
    """Nothing measures a manual SLO, so nothing would ever clear its burn-rate alerts."""
    now = utcnow()
    for alert in (await active_alerts(session, [slo.id])).get(slo.id, {}).values():
        resolve_alert(
            session,
            slo,
            alert,
            now,
            title=(
                f"{alert.severity.capitalize()} burn-rate alert on SLO {slo.name!r} closed: "
                "its sli was removed, so it is no longer measured"
            ),
            details={"reason": "sli_removed"},
        )


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


async def list_history(
    session: AsyncSession,
    organization_id: uuid.UUID,
    slo_id: uuid.UUID,
    page: PageRequest,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[SLOSnapshotOut]:
    """Stored evaluations of an SLO, oldest first, between `since` and `until`."""
    await get_slo(session, organization_id, slo_id)
    query = select(SLOSnapshot).where(SLOSnapshot.slo_id == slo_id)
    if since is not None:
        query = query.where(SLOSnapshot.evaluated_at >= since)
    if until is not None:
        query = query.where(SLOSnapshot.evaluated_at < until)
    return await fetch_page(
        session,
        query,
        page,
        sort=SLOSnapshot.evaluated_at,
        row_id=SLOSnapshot.id,
        render=SLOSnapshotOut.model_validate,
    )


async def list_alerts(
    session: AsyncSession,
    organization_id: uuid.UUID,
    slo_id: uuid.UUID,
    page: PageRequest,
    *,
    active: bool | None = None,
) -> Page[SLOAlertOut]:
    """The SLO's burn-rate alerts, newest first; `active` keeps only open or closed ones."""
    await get_slo(session, organization_id, slo_id)
    query = select(SLOAlert).where(SLOAlert.slo_id == slo_id)
    if active is not None:
        resolved = SLOAlert.resolved_at.is_(None)
        query = query.where(resolved if active else ~resolved)
    return await fetch_page(
        session,
        query,
        page,
        sort=SLOAlert.started_at,
        row_id=SLOAlert.id,
        render=SLOAlertOut.model_validate,
        descending=True,
    )
