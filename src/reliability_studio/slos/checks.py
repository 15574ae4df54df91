"""Check an SLI against Prometheus before it is saved, where Prometheus can be reached.

Local parsing (sli.py) already refuses malformed PromQL. Here Prometheus itself says
whether it accepts each query, and whether a latency threshold is one of the histogram's
buckets. An unreachable Prometheus never blocks a write: the engine will report the SLO
as `unknown` until it can measure it.
"""

from __future__ import annotations

import math
from datetime import timedelta

from reliability_studio.api.problems import UnprocessableError
from reliability_studio.slos.engine import measured_expressions
from reliability_studio.slos.promql import window_queries
from reliability_studio.slos.sli import SLI, LatencySLI
from reliability_studio.telemetry.prometheus import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailableError,
)

CHECK_WINDOW = timedelta(minutes=5)


async def check_sli(client: PrometheusClient, sli: SLI) -> None:
    """422 naming the field when Prometheus refuses the SLI; silent when unreachable."""
    try:
        await _check(client, sli)
    except PrometheusUnavailableError:
        return


async def _check(client: PrometheusClient, sli: SLI) -> None:
    if isinstance(sli, LatencySLI):
        buckets = await client.label_values("le", sli.histogram)
        bounds = sorted({b for b in map(_bound, buckets) if not math.isnan(b)})
        if bounds and not any(math.isclose(b, sli.threshold_seconds) for b in bounds):
            listed = ", ".join(f"{b:g}" for b in bounds if math.isfinite(b))
            raise UnprocessableError(
                f"threshold_seconds {sli.threshold_seconds:g} is not a bucket of "
                f"{sli.histogram}; its buckets are: {listed}",
                field="sli.threshold_seconds",
            )
    # Exactly what the engine will send (a `query` SLI inside max(), which needs a vector).
    for expr in measured_expressions(window_queries(sli, CHECK_WINDOW)):
        try:
            await client.query(expr)
        except PrometheusQueryError as exc:
            raise UnprocessableError(
                f"Prometheus refuses the SLI's query {expr!r}: {exc}", field="sli"
            ) from None


def _bound(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan
