"""HTTP layer of reading alerts (`/api/alerts`, `/api/incidents/{id}/alerts`) and alert
groups. Ingestion is in `ingest_router.py`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from reliability_studio.alerts import service as alerts
from reliability_studio.alerts.matchers import Matcher, MatcherSyntaxError, parse_matcher
from reliability_studio.alerts.schemas import (
    AlertGroupOut,
    AlertOut,
    AlertStatus,
    GroupStatus,
)
from reliability_studio.api.deps import OrganizationId, Session, reads_only
from reliability_studio.api.fields import NoNul, Timestamp
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES, UnprocessableError
from reliability_studio.incidents.service import ensure_incident_exists

router = APIRouter(tags=["alerts"], responses=PROBLEM_RESPONSES)
INGEST_ATTEMPTS = 3

StatusFilter = Annotated[list[AlertStatus] | None, Query(description="Repeat for several.")]
MatcherFilter = Annotated[
    list[Annotated[str, NoNul]] | None,
    Query(
        alias="filter",
        max_length=20,
        description='Label matchers, e.g. `filter=severity="critical"`; repeat to AND them.',
    ),
]


@router.get("/api/alerts", response_model=Page[AlertOut])
@reads_only
async def list_alerts(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: StatusFilter = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    service_id: uuid.UUID | None = None,
    unknown_service: bool | None = None,
    matchers: MatcherFilter = None,
    started_after: Timestamp | None = None,
    started_before: Timestamp | None = None,
    incident_id: uuid.UUID | None = None,
    fingerprint: Annotated[str | None, Query(max_length=128)] = None,
    correlated: bool | None = None,
) -> Page[AlertOut]:
    """Alerts, newest first, e.g. `?status=firing&filter=severity="critical"`."""
    filters = alerts.AlertFilters(
        statuses=list(status) if status else None,
        service=service,
        service_id=service_id,
        unknown_service=unknown_service,
        matchers=_parse_matchers(matchers or []),
        started_after=started_after,
        started_before=started_before,
        incident_id=incident_id,
        fingerprint=fingerprint,
        correlated=correlated,
    )
    return await alerts.list_alerts(session, organization_id, page, filters)


@router.get("/api/alerts/{alert_id}", response_model=AlertOut)
@reads_only
async def get_alert(
    alert_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> AlertOut:
    """One alert."""
    return alerts.alert_out(await alerts.get_alert(session, organization_id, alert_id))


@router.get("/api/incidents/{incident_id}/alerts", response_model=Page[AlertOut])
@reads_only
async def list_incident_alerts(
    incident_id: uuid.UUID,
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: StatusFilter = None,
    matchers: MatcherFilter = None,
) -> Page[AlertOut]:
    """The alerts correlated into an incident, newest first."""
    await ensure_incident_exists(session, organization_id, incident_id)
    filters = alerts.AlertFilters(
        statuses=list(status) if status else None,
        matchers=_parse_matchers(matchers or []),
        incident_id=incident_id,
    )
    return await alerts.list_alerts(session, organization_id, page, filters)


@router.get("/api/alert-groups", response_model=Page[AlertGroupOut])
@reads_only
async def list_alert_groups(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: Annotated[list[GroupStatus] | None, Query()] = None,
    incident_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
) -> Page[AlertGroupOut]:
    """Correlation groups, newest first: which alerts share which incident, and why."""
    return await alerts.list_groups(
        session,
        organization_id,
        page,
        statuses=list(status) if status else None,
        incident_id=incident_id,
        rule_id=rule_id,
    )


@router.get("/api/alert-groups/{group_id}", response_model=AlertGroupOut)
@reads_only
async def get_alert_group(
    group_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> AlertGroupOut:
    """One correlation group."""
    return alerts.group_out(await alerts.get_group(session, organization_id, group_id))


def _parse_matchers(texts: list[str]) -> list[Matcher]:
    parsed = []
    for position, text in enumerate(texts):
        try:
            parsed.append(parse_matcher(text))
        except MatcherSyntaxError as error:
            raise UnprocessableError(
                str(error), field=f"filter.{position}", location="query"
            ) from None
    return parsed
