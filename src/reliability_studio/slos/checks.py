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


async def check_sli(client: PrometheusClient, sli: SLI) -> SLI:
    """422 naming the field when Prometheus refuses the SLI; silent when unreachable.

    Returns the SLI to store: a latency SLI learns its bucket's exact `le` text here.
    """
    try:
        return await _check(client, sli)
    except PrometheusUnavailableError:
        return sli


async def _check(client: PrometheusClient, sli: SLI) -> SLI:
    if isinstance(sli, LatencySLI) and sli.le is None:
        buckets = await client.label_values("le", sli.histogram)
        bounds = {text: bound for text in buckets if not math.isnan(bound := _bound(text))}
        matching = [t for t, b in bounds.items() if math.isclose(b, sli.threshold_seconds)]
        if bounds and not matching:
            listed = ", ".join(f"{b:g}" for b in sorted(bounds.values()) if math.isfinite(b))
            raise UnprocessableError(
                f"threshold_seconds {sli.threshold_seconds:g} is not a bucket of "
                f"{sli.histogram}; its buckets are: {listed}",
                field="sli.threshold_seconds",
            )
        if len(matching) == 1:
            sli = sli.model_copy(update={"le": matching[0]})
    # Exactly what the engine will send (a `query` SLI inside max(), which needs a vector).
    for expr in measured_expressions(window_queries(sli, CHECK_WINDOW)):
        try:
            await client.query(expr)
        except PrometheusQueryError as exc:
            raise UnprocessableError(
                f"Prometheus refuses the SLI's query {expr!r}: {exc}", field="sli"
            ) from None
    return sli


def _bound(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan
