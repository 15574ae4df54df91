"""The SLO engine: measure many SLOs from Prometheus in one batched pass.

For every SLO and window it plans the PromQL (see promql.py), sends all of it through
batch.py, and turns the answers into an `Evaluation` per SLO (see evaluation.py). It holds
no database state; the scheduler and the API persist what it returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import TypeAdapter

from reliability_studio.slos.batch import run_batched
from reliability_studio.slos.budget import BURN_WINDOWS, Counts
from reliability_studio.slos.evaluation import Evaluation, Measurement, evaluate
from reliability_studio.slos.promql import WindowQueries, window_queries
from reliability_studio.slos.sli import SLI
from reliability_studio.slos.windows import SLOWindow, slo_window
from reliability_studio.telemetry.prometheus import PrometheusClient

SLI_ADAPTER: TypeAdapter[SLI] = TypeAdapter(SLI)


@dataclass(frozen=True)
class SLOSpec:
    """What the engine needs to know of an SLO."""

    id: uuid.UUID
    objective: float
    window_days: int
    calendar_period: str | None
    timezone: str
    sli: SLI


@dataclass(frozen=True)
class Outcome:
    """One SLO's result: an evaluation, or the reason Prometheus refused its queries."""

    evaluation: Evaluation | None
    error: str | None
    queries: dict[str, WindowQueries]


@dataclass(frozen=True)
class PassResult:
    """A whole pass: outcomes by SLO id, and how many HTTP queries it cost."""

    outcomes: dict[uuid.UUID, Outcome]
    queries_sent: int
    expressions: int


def plan(spec: SLOSpec, now: datetime) -> tuple[SLOWindow, dict[str, WindowQueries]]:
    """The SLO's window and, per window name (`slo` and each burn window), its queries."""
    window = slo_window(now, spec.window_days, spec.calendar_period, spec.timezone)
    windows: dict[str, timedelta] = {"slo": window.elapsed, **BURN_WINDOWS}
    return window, {name: window_queries(spec.sli, length) for name, length in windows.items()}


async def measure(
    client: PrometheusClient, specs: list[SLOSpec], now: datetime, *, chunk_size: int = 100
) -> PassResult:
    """Evaluate every SLO at `now`. Raises `PrometheusUnavailableError` if Prometheus is down."""
    plans = {spec.id: plan(spec, now) for spec in specs}
    expressions = [
        expr
        for _, queries in plans.values()
        for wq in queries.values()
        for expr in measured_expressions(wq)
    ]
    batch = await run_batched(client, expressions, now, chunk_size=chunk_size)

    outcomes: dict[uuid.UUID, Outcome] = {}
    for spec in specs:
        window, queries = plans[spec.id]
        refused = [
            batch.errors[e]
            for wq in queries.values()
            for e in measured_expressions(wq)
            if e in batch.errors
        ]
        if refused:
            reason = f"Prometheus refused the query: {refused[0]}"
            outcomes[spec.id] = Outcome(None, reason, queries)
            continue
        measured = {name: _measured(wq, batch.values) for name, wq in queries.items()}
        measurement = Measurement(
            window=measured["slo"], burn_windows={w: measured[w] for w in BURN_WINDOWS}
        )
        outcomes[spec.id] = Outcome(evaluate(spec.objective, window, measurement), None, queries)
    return PassResult(outcomes, batch.queries_sent, len(set(expressions)))


def measured_expressions(queries: WindowQueries) -> list[str]:
    """What the engine asks Prometheus for one window: a ratio, or good (else bad) and total."""
    if queries.ratio is not None:
        return [_ratio_expr(queries.ratio)]
    assert queries.total is not None
    counted = queries.good if queries.good is not None else queries.bad
    assert counted is not None
    return [counted, queries.total]


def _ratio_expr(ratio: str) -> str:
    # A `query` SLI may return several series; the worst (highest) error ratio counts.
    return f"max({ratio})"


def _measured(queries: WindowQueries, values: dict[str, float | None]) -> Counts | float | None:
    if queries.ratio is not None:
        return values.get(_ratio_expr(queries.ratio))
    assert queries.total is not None
    total = values.get(queries.total)
    if total is None:
        return None
    if queries.good is not None:
        # No good series (yet) while there are events: none of them was good.
        bad = total - (values.get(queries.good) or 0.0)
    else:
        # No error series (yet): no errors, not no data.
        assert queries.bad is not None
        bad = values.get(queries.bad) or 0.0
    return Counts(bad=max(bad, 0.0), total=total)
