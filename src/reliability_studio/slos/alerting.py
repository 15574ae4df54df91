"""Burn-rate alerts: record them, and open (or join) an incident when one pages.

- A page alert starts: the alert is recorded; the service's open incident gets a
  `slo_burn_rate` timeline event, or a new critical incident is opened with it.
- A ticket alert starts: the alert is recorded, with a note on the service's open
  incident if there is one. Nobody is paged.
- An alert clears: it is resolved, and its incident's timeline says so.
- While an alert stays active nothing new happens: one burn, one incident. A unique index
  on active alerts holds this even when two evaluations race.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.incidents.schemas import IncidentCreate
from reliability_studio.incidents.service import add_incident, open_incident_for_service
from reliability_studio.notify.outbox import enqueue_incident_events
from reliability_studio.slos.budget import BurnRateRule
from reliability_studio.slos.evaluation import Evaluation
from reliability_studio.slos.models import SLO, SLOAlert
from reliability_studio.slos.promql import WindowQueries
from reliability_studio.timeline.service import record_event

ENGINE_ACTOR = "slo-engine"


async def active_alerts(
    session: AsyncSession, slo_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, SLOAlert]]:
    """The active alerts of these SLOs, by SLO and severity, in one query."""
    found: dict[uuid.UUID, dict[str, SLOAlert]] = {}
    for alert in await session.scalars(
        select(SLOAlert).where(SLOAlert.slo_id.in_(slo_ids), SLOAlert.resolved_at.is_(None))
    ):
        found.setdefault(alert.slo_id, {})[alert.severity] = alert
    return found


async def reconcile_alerts(
    session: AsyncSession,
    slo: SLO,
    service_name: str,
    evaluation: Evaluation,
    queries: dict[str, WindowQueries],
    now: datetime,
    active: dict[str, SLOAlert],
) -> None:
    """Start the alerts that now fire and resolve those that no longer do (uncommitted).

    `active` holds the SLO's active alerts by severity (see `active_alerts`).
    """
    for severity in ("page", "ticket"):
        rule = evaluation.firing.get(severity)
        alert = active.get(severity)
        if rule is not None and alert is None:
            await _start(session, slo, service_name, rule, evaluation, queries, now)
        elif rule is None and alert is not None:
            _resolve(session, slo, alert, evaluation, now)


async def _start(
    session: AsyncSession,
    slo: SLO,
    service_name: str,
    rule: BurnRateRule,
    evaluation: Evaluation,
    queries: dict[str, WindowQueries],
    now: datetime,
) -> None:
    alert = SLOAlert(
        id=uuid.uuid4(),
        organization_id=slo.organization_id,
        slo_id=slo.id,
        severity=rule.severity,
        rule=rule.name,
        factor=rule.factor,
        started_at=now,
        burn_rates=evaluation.burn_rates,
    )
    try:
        async with session.begin_nested():
            session.add(alert)
    except IntegrityError:  # another evaluation started the same alert first
        return

    incident = await open_incident_for_service(session, slo.organization_id, slo.service_id)
    long_rate = evaluation.burn_rates.get(rule.long_window)
    summary = (
        f"SLO {slo.name!r} is burning its error budget {long_rate:.1f}x too fast "
        f"({rule.long_window} and {rule.short_window} above {rule.factor:g})"
    )
    if incident is None and rule.severity == "page":
        incident = await add_incident(
            session,
            slo.organization_id,
            ENGINE_ACTOR,
            IncidentCreate(
                title=f"SLO burn rate: {slo.name} ({service_name})",
                description=summary,
                severity="critical",
                service_ids=[slo.service_id],
            ),
        )
    if incident is None:
        return  # a ticket with no incident to note it on: the alert row is the record
    alert.incident_id = incident.id
    if rule.severity == "page":
        await enqueue_incident_events(
            session,
            slo.organization_id,
            [("slo.burn_rate", incident)],
            title=f"SLO {slo.name!r} ({service_name}) is burning its error budget",
            details={
                "slo_id": str(slo.id),
                "summary": summary,
                "burn_rates": evaluation.burn_rates,
            },
        )
    record_event(
        session,
        organization_id=slo.organization_id,
        incident_id=incident.id,
        type="slo_burn_rate",
        source=ENGINE_ACTOR,
        title=f"{rule.severity.capitalize()}: {summary}",
        actor=ENGINE_ACTOR,
        occurred_at=now,
        metadata=_figures(slo, rule, evaluation, queries),
    )


def _resolve(
    session: AsyncSession, slo: SLO, alert: SLOAlert, evaluation: Evaluation, now: datetime
) -> None:
    resolve_alert(
        session,
        slo,
        alert,
        now,
        title=f"{alert.severity.capitalize()} burn-rate alert on SLO {slo.name!r} has cleared",
        details={"burn_rates": evaluation.burn_rates},
    )


def resolve_alert(
    session: AsyncSession,
    slo: SLO,
    alert: SLOAlert,
    now: datetime,
    *,
    title: str,
    details: dict[str, Any],
) -> None:
    """Resolve an alert and say so on its incident's timeline (uncommitted)."""
    alert.resolved_at = now
    if alert.incident_id is None:
        return
    record_event(
        session,
        organization_id=slo.organization_id,
        incident_id=alert.incident_id,
        type="slo_burn_rate_resolved",
        source=ENGINE_ACTOR,
        title=title,
        actor=ENGINE_ACTOR,
        occurred_at=now,
        metadata={
            "slo_id": str(slo.id),
            "severity": alert.severity,
            "rule": alert.rule,
            "started_at": alert.started_at.isoformat(),
            **details,
        },
    )


def _figures(
    slo: SLO, rule: BurnRateRule, evaluation: Evaluation, queries: dict[str, WindowQueries]
) -> dict[str, Any]:
    """What an on-call engineer needs to check the alert: figures and the PromQL."""
    return {
        "slo_id": str(slo.id),
        "severity": rule.severity,
        "rule": rule.name,
        "factor": rule.factor,
        "objective": slo.objective,
        "burn_rates": evaluation.burn_rates,
        "error_budget_remaining": evaluation.error_budget_remaining,
        "sli_value": evaluation.sli_value,
        "promql": {
            window: _ratio_promql(queries[window])
            for window in (rule.long_window, rule.short_window)
        },
    }


def _ratio_promql(queries: WindowQueries) -> str:
    """The error ratio as one query, as the engine measured it."""
    if queries.ratio is not None:
        return f"max({queries.ratio})"
    if queries.good is not None:
        return f"({queries.total} - ({queries.good} or vector(0))) / ({queries.total})"
    return f"({queries.bad} or vector(0)) / ({queries.total})"
