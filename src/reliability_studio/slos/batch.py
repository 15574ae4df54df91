"""Run many small PromQL expressions as few queries.

Each expression gives at most one number. Up to `chunk_size` of them are joined into one
instant query, each tagged with `label_replace` so its answer can be found again:

    label_replace(<expr 0>, "rs_q", "0", "", "") or label_replace(<expr 1>, "rs_q", "1", "", "")

Identical expressions (SLOs sharing selectors) are sent once. If Prometheus refuses a
chunk, it is split in halves until the culprit is alone, so one bad SLI never blinds the
others.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from reliability_studio.telemetry.prometheus import PrometheusClient, PrometheusQueryError

TAG = "rs_q"


@dataclass
class BatchResult:
    """The value of each expression (None: no data), and the refused ones with the reason."""

    values: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    queries_sent: int = 0


async def run_batched(
    client: PrometheusClient,
    expressions: Iterable[str],
    at: datetime,
    *,
    chunk_size: int = 100,
    concurrency: int = 4,
) -> BatchResult:
    """Evaluate every expression at `at`. `PrometheusUnavailableError` propagates to the caller."""
    unique = list(dict.fromkeys(expressions))
    result = BatchResult()
    limit = asyncio.Semaphore(concurrency)

    async def run(chunk: list[str]) -> None:
        try:
            async with limit:
                result.queries_sent += 1
                samples = await client.query(_joined(chunk), at)
        except PrometheusQueryError as exc:
            if len(chunk) == 1:
                result.errors[chunk[0]] = str(exc)
                return
            middle = len(chunk) // 2
            await asyncio.gather(run(chunk[:middle]), run(chunk[middle:]))
            return
        found = {int(s.labels.get(TAG, -1)): s.value for s in samples}
        for index, expr in enumerate(chunk):
            value = found.get(index)
            result.values[expr] = None if value is None or math.isnan(value) else value

    chunks = [unique[i : i + chunk_size] for i in range(0, len(unique), chunk_size)]
    await asyncio.gather(*(run(chunk) for chunk in chunks))
    return result


def _joined(chunk: list[str]) -> str:
    return " or ".join(
        f'label_replace({expr}, "{TAG}", "{index}", "", "")' for index, expr in enumerate(chunk)
    )
