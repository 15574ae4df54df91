"""HTTP layer of alert ingestion: `/api/integrations/alertmanager`, `/api/integrations/grafana`
and `POST /api/alerts`.

Each integration's token is checked before its body is even parsed (`GatedRoute`), so an
unauthenticated caller learns nothing from validation errors and costs no parsing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
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
from reliability_studio.alerts.schemas import AlertIn, AlertmanagerWebhook, AlertOut, IngestSummary
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.problems import PROBLEM_RESPONSES, UnprocessableError
from reliability_studio.db.base import utcnow

INGEST_ATTEMPTS = 3


def gated(integration: str) -> type[APIRoute]:
    """A route class that authenticates `integration`'s token before anything else."""

    class GatedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def authenticated(request: Request) -> Response:
                request.app.state.ingest_gate.authenticate(request, integration)
                return await handler(request)

            return authenticated

    return GatedRoute


def _ingest_router(integration: str) -> APIRouter:
    return APIRouter(
        tags=["alert ingestion"], responses=PROBLEM_RESPONSES, route_class=gated(integration)
    )


alertmanager_router = _ingest_router("alertmanager")
grafana_router = _ingest_router("grafana")
alerts_router = _ingest_router("api")
routers = (alertmanager_router, grafana_router, alerts_router)


@alertmanager_router.post(
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


@grafana_router.post(
    "/api/integrations/grafana",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestSummary,
)
async def grafana_webhook(
    body: AlertmanagerWebhook, request: Request, session: Session, organization_id: OrganizationId
) -> IngestSummary:
    """Grafana alerting's webhook contact point (its Alertmanager-like payload)."""
    return await _ingest_webhook(request, session, organization_id, "grafana", body)


@alerts_router.post(
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
    request.app.state.ingest_gate.admit("api", 1)
    incoming = [from_api(body, utcnow())]
    summary, is_new = await _store(request, session, organization_id, "api", incoming)
    alert = await alerts.get_alert(session, organization_id, summary.alert_ids[0])
    response.status_code = status.HTTP_201_CREATED if is_new[0] else status.HTTP_200_OK
    response.headers["Location"] = f"/api/alerts/{alert.id}"
    return alerts.alert_out(alert)


async def _ingest_webhook(
    request: Request,
    session: AsyncSession,
    organization_id: uuid.UUID,
    integration: str,
    body: AlertmanagerWebhook,
) -> IngestSummary:
    gate = request.app.state.ingest_gate
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
