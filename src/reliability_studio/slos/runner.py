"""Evaluate SLOs and store what the engine found: figures, history, alerts, incidents.

Each SLO is stored in its own transaction, so that one SLO's failure never holds back
another's result. When Prometheus cannot be reached, the SLOs keep their last figures,
marked `stale`, with status `unknown`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.slos.alerting import active_alerts, reconcile_alerts
from reliability_studio.slos.engine import SLI_ADAPTER, Outcome, SLOSpec, measure
from reliability_studio.slos.evaluation import Evaluation
from reliability_studio.slos.models import SLO, SLOAlert, SLOSnapshot
from reliability_studio.telemetry.prometheus import PrometheusClient, PrometheusUnavailableError

log = logging.getLogger(__name__)
# SLOs stored per transaction: few round trips, and a failure costs one batch a retry.
STORE_BATCH = 200


@dataclass(frozen=True)
class RunSummary:
    """What one evaluation run did."""

    evaluated: int
    queries_sent: int
    prometheus_available: bool


async def evaluate_and_store(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: PrometheusClient,
    settings: Settings,
    slo_ids: list[uuid.UUID],
    now: datetime,
) -> RunSummary:
    """Measure the SLOs with an SLI among `slo_ids` and store the results."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(SLO, Service.name)
                .join(Service, Service.id == SLO.service_id)
                .where(SLO.id.in_(slo_ids))
            )
        ).all()
    names = {slo.id: name for slo, name in rows}
    specs: list[SLOSpec] = []
    for slo, _ in rows:
        if slo.sli is None:
            continue
        try:
            specs.append(_spec(slo))
        except ValueError as exc:  # stored before a rule tightened: this SLO only is unknown
            error = f"the stored sli is no longer valid: {exc}"
            await _store_safely(sessionmaker, settings, slo.id, "", Outcome(None, error, {}), now)
    if not specs:
        return RunSummary(0, 0, True)
    try:
        result = await measure(client, specs, now)
    except PrometheusUnavailableError as exc:
        log.warning("prometheus unavailable; SLOs marked stale", extra={"error": str(exc)})
        await _mark_stale(sessionmaker, [spec.id for spec in specs], str(exc), now)
        return RunSummary(0, 0, False)

    for start in range(0, len(specs), STORE_BATCH):
        batch = {
            s.id: (names[s.id], result.outcomes[s.id]) for s in specs[start : start + STORE_BATCH]
        }
        try:
            await _store_batch(sessionmaker, settings, batch, now)
        except Exception:  # find the culprit: store these one by one
            log.exception("storing a batch of SLO evaluations failed; retrying one by one")
            for slo_id, (name, outcome) in batch.items():
                await _store_safely(sessionmaker, settings, slo_id, name, outcome, now)
    return RunSummary(len(specs), result.queries_sent, True)


async def _store_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    batch: dict[uuid.UUID, tuple[str, Outcome]],
    now: datetime,
) -> None:
    """Store many SLOs' results in one transaction, with one query for SLOs and alerts."""
    async with sessionmaker() as session:
        slos = await session.scalars(_locked(select(SLO).where(SLO.id.in_(batch))))
        active = await active_alerts(session, list(batch))
        for slo in slos:
            name, outcome = batch[slo.id]
            await _record(session, settings, slo, name, outcome, now, active.get(slo.id, {}))
        await session.commit()


async def _store_safely(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    slo_id: uuid.UUID,
    service_name: str,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Store one SLO's result; a failure is logged and never stops the others."""
    try:
        await _store_batch(sessionmaker, settings, {slo_id: (service_name, outcome)}, now)
    except Exception:
        log.exception("storing an SLO evaluation failed", extra={"slo_id": str(slo_id)})


def _locked(query: Select[SLO]) -> Select[SLO]:
    """The SLOs locked, in id order, until the results are stored: a user's PATCH meanwhile
    waits a moment, instead of making this write fail its version check
    (`db.base.Versioned`) and the batch be stored again one SLO at a time."""
    return query.order_by(SLO.id).with_for_update(key_share=True)


def _spec(slo: SLO) -> SLOSpec:
    return SLOSpec(
        id=slo.id,
        objective=slo.objective,
        window_days=slo.window_days,
        calendar_period=slo.calendar_period,
        timezone=slo.timezone,
        sli=SLI_ADAPTER.validate_python(slo.sli),
    )


async def _record(
    session: AsyncSession,
    settings: Settings,
    slo: SLO,
    service_name: str,
    outcome: Outcome,
    now: datetime,
    active: dict[str, SLOAlert],
) -> None:
    """Apply one outcome to its SLO, snapshot and alerts (uncommitted)."""
    if slo.sli is None:  # made manual meanwhile
        return
    slo.evaluated_at = now
    if outcome.evaluation is None:
        slo.status = "unknown"
        slo.stale = False
        slo.evaluation_error = outcome.error
        return
    status_changed = slo.status != outcome.evaluation.status
    _apply(slo, outcome.evaluation)
    if _snapshot_due(slo, settings, now) or status_changed:
        session.add(_snapshot(slo, now))
        slo.last_snapshot_at = now
    await reconcile_alerts(
        session, slo, service_name, outcome.evaluation, outcome.queries, now, active
    )


def _apply(slo: SLO, evaluation: Evaluation) -> None:
    slo.status = evaluation.status
    slo.sli_value = evaluation.sli_value
    slo.error_budget_remaining = evaluation.error_budget_remaining
    slo.budget_consumed = evaluation.budget_consumed
    slo.burn_rates = dict(evaluation.burn_rates)
    slo.time_to_exhaustion_seconds = evaluation.time_to_exhaustion_seconds
    slo.good_events = evaluation.good_events
    slo.total_events = evaluation.total_events
    slo.stale = False
    slo.evaluation_error = None


def _snapshot_due(slo: SLO, settings: Settings, now: datetime) -> bool:
    if slo.last_snapshot_at is None:
        return True
    return now - slo.last_snapshot_at >= timedelta(seconds=settings.slo_history_interval_seconds)


def _snapshot(slo: SLO, now: datetime) -> SLOSnapshot:
    return SLOSnapshot(
        id=uuid.uuid4(),
        organization_id=slo.organization_id,
        slo_id=slo.id,
        evaluated_at=now,
        status=slo.status,
        sli_value=slo.sli_value,
        error_budget_remaining=slo.error_budget_remaining,
        budget_consumed=slo.budget_consumed,
        burn_rates=slo.burn_rates,
        good_events=slo.good_events,
        total_events=slo.total_events,
    )


async def _mark_stale(
    sessionmaker: async_sessionmaker[AsyncSession],
    slo_ids: list[uuid.UUID],
    error: str,
    now: datetime,
) -> None:
    async with sessionmaker() as session:
        for slo in await session.scalars(_locked(select(SLO).where(SLO.id.in_(slo_ids)))):
            slo.status = "unknown"
            slo.stale = True
            slo.evaluation_error = f"Prometheus unreachable: {error}"
        await session.commit()
