"""HTTP layer of alert ingestion (`/api/integrations/*`, `POST /api/alerts`), alerts and
alert groups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts import service as alerts
from reliability_studio.alerts.ingest import (
    IncomingAlert,
    ServiceLabels,
    from_api,
    from_webhook,
    ingest,
)
from reliability_studio.alerts.matchers import Matcher, MatcherSyntaxError, parse_matcher
from reliability_studio.alerts.schemas import (
    AlertGroupOut,
    AlertIn,
    AlertmanagerWebhook,
    AlertOut,
    AlertStatus,
    GroupStatus,
    IngestSummary,
)
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.fields import NoNul, Timestamp
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES, UnprocessableError
from reliability_studio.db.base import utcnow
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


@router.post(
    "/api/integrations/alertmanager",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestSummary,
)
async def alertmanager_webhook(
    body: AlertmanagerWebhook, request: Request, session: Session, organization_id: OrganizationId
) -> IngestSummary:
    """Alertmanager's webhook (payload version 4). Point a `webhook_configs` receiver here.

    Answers 202 once the alerts are stored; incidents follow within moments.
    """
    return await _ingest_webhook(request, session, organization_id, "alertmanager", body)


@router.post(
    "/api/integrations/grafana",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestSummary,
)
async def grafana_webhook(
    body: AlertmanagerWebhook, request: Request, session: Session, organization_id: OrganizationId
) -> IngestSummary:
    """Grafana alerting's webhook contact point (its Alertmanager-like payload)."""
    return await _ingest_webhook(request, session, organization_id, "grafana", body)


@router.post(
    "/api/alerts",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertOut,
    responses={200: {"description": "A known alert was updated", "model": AlertOut}},
)
async def post_alert(
    body: AlertIn,
    request: Request,
    response: Response,
    session: Session,
    organization_id: OrganizationId,
) -> AlertOut:
    """One alert from anything. 201 for a new alert, 200 when it updated a known one."""
    request.app.state.ingest_gate.authenticate(request, "api")
    request.app.state.ingest_gate.admit("api", 1)
    incoming = [from_api(body, utcnow())]
    summary, is_new = await _store(request, session, organization_id, "api", incoming)
    alert = await alerts.get_alert(session, organization_id, summary.alert_ids[0])
    response.status_code = status.HTTP_201_CREATED if is_new[0] else status.HTTP_200_OK
    response.headers["Location"] = f"/api/alerts/{alert.id}"
    return alerts.alert_out(alert)


@router.get("/api/alerts", response_model=Page[AlertOut])
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
async def get_alert(
    alert_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> AlertOut:
    """One alert."""
    return alerts.alert_out(await alerts.get_alert(session, organization_id, alert_id))


@router.get("/api/incidents/{incident_id}/alerts", response_model=Page[AlertOut])
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
async def get_alert_group(
    group_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> AlertGroupOut:
    """One correlation group."""
    return alerts.group_out(await alerts.get_group(session, organization_id, group_id))


async def _ingest_webhook(
    request: Request,
    session: AsyncSession,
    organization_id: uuid.UUID,
    integration: str,
    body: AlertmanagerWebhook,
) -> IngestSummary:
    gate = request.app.state.ingest_gate
    gate.authenticate(request, integration)
    max_batch = request.app.state.settings.alert_max_batch
    if len(body.alerts) > max_batch:
        raise UnprocessableError(
            f"at most {max_batch} alerts per request (ALERT_MAX_BATCH)", field="alerts"
        )
    gate.admit(integration, len(body.alerts))
    now = utcnow()
    incoming = [from_webhook(alert, now) for alert in body.alerts]
    summary, _ = await _store(request, session, organization_id, integration, incoming)
    return summary


async def _store(
    request: Request,
    session: AsyncSession,
    organization_id: uuid.UUID,
    integration: str,
    incoming: Sequence[IncomingAlert],
) -> tuple[IngestSummary, list[bool]]:
    """Ingest and commit, retrying when a concurrent request stored the same alert first."""
    settings = request.app.state.settings
    service_labels = ServiceLabels(
        names=settings.alert_service_labels,
        create_unknown=settings.alert_create_unknown_services,
    )
    for attempt in range(1, INGEST_ATTEMPTS + 1):
        try:
            result = await ingest(
                session, organization_id, integration, incoming, service_labels, utcnow()
            )
            await session.commit()
            break
        except (IntegrityError, OperationalError) as error:
            await session.rollback()
            if attempt == INGEST_ATTEMPTS or not _is_race(error):
                raise
    _count(request, integration, result[0])
    correlator = getattr(request.app.state, "correlator", None)
    if correlator is not None:
        correlator.wake()
    return result


def _count(request: Request, integration: str, summary: IngestSummary) -> None:
    metrics = request.app.state.metrics
    for outcome, count in (
        ("created", summary.created),
        ("updated", summary.updated),
        ("duplicate", summary.duplicates),
        ("stale", summary.stale),
    ):
        if count:
            metrics.alerts_received.labels(integration, outcome).inc(count)
    if summary.unknown_services:
        metrics.alerts_unknown_service.inc(len(summary.unknown_services))


def _is_race(error: Exception) -> bool:
    """A unique violation or a deadlock: another request got there first; try again."""
    if isinstance(error, IntegrityError):
        return True
    code = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(
        getattr(error, "orig", None), "pgcode", None
    )
    return code in ("40P01", "40001")


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
