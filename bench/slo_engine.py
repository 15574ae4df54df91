"""Benchmark: one full SLO evaluation pass over many SLOs and a Prometheus with 30 days of data.

    python -m bench.slo_engine [--slos 1000] [--runs 5]

It starts a throwaway Prometheus (backfilled with `promtool`) and PostgreSQL, creates one
service and one ratio SLO per job, and times:

- `measure`: the engine's batched queries for every SLO and window (no database);
- `pass`: a full scheduler pass (`evaluate_and_store`): measure, then store every SLO's
  figures, snapshot and alerts in PostgreSQL;
- for comparison, one expression of the kind the pass sends most of, queried alone
  (`single_query`): times the number of expressions, it is what a pass would cost with one
  HTTP query per SLO and window, as a naive engine would send.

Every SLO has its own selectors, so deduplication cannot help: this is the honest case.
Samples are 1 minute apart for the last 6 hours, 15 minutes for the last 3 days, and 1 hour
before that: enough for every window's `increase()`, and small enough to backfill quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.support.postgres import PostgresServer
from tests.support.prometheus import PrometheusServer, Series

from bench.report import write_result
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from reliability_studio.slos.engine import SLOSpec, measure
from reliability_studio.slos.runner import evaluate_and_store
from reliability_studio.slos.sli import RatioSLI
from reliability_studio.telemetry.prometheus import PrometheusClient

TARGET_SECONDS = 10.0


def sample_times(now: float) -> list[float]:
    """1-minute samples for 6 h, 15-minute for 3 days, hourly back to 30 days."""
    times = {now - 60 * k for k in range(0, 6 * 60 + 1)}
    times |= {now - 900 * k for k in range(0, 3 * 96 + 1)}
    times |= {now - 3600 * k for k in range(0, 30 * 24 + 1)}
    return sorted(times)


def dataset(jobs: int, now: float) -> list[Series]:
    """Per job: requests at 100/min, of which job-dependent 0.01%-0.5% fail."""
    times = sample_times(now)
    start = times[0]
    series: list[Series] = []
    for job in range(jobs):
        error_share = 0.0001 * (1 + job % 50)
        ok, bad = [], []
        for t in times:
            minutes = (t - start) / 60
            ok.append((t, round(minutes * 100 * (1 - error_share), 4)))
            bad.append((t, round(minutes * 100 * error_share, 4)))
        labels = {"job": f"svc-{job}"}
        series.append(Series("http_requests_total", {**labels, "code": "200"}, ok))
        series.append(Series("http_requests_total", {**labels, "code": "500"}, bad))
    return series


def spec(job: int) -> SLOSpec:
    return SLOSpec(
        id=uuid.uuid4(),
        objective=99.9,
        window_days=30,
        calendar_period=None,
        timezone="UTC",
        sli=RatioSLI(
            kind="ratio",
            errors=f'http_requests_total{{job="svc-{job}",code="500"}}',
            total=f'http_requests_total{{job="svc-{job}"}}',
        ),
    )


async def time_measure(url: str, specs: list[SLOSpec], at: datetime, runs: int) -> dict[str, Any]:
    client = PrometheusClient(url, timeout_seconds=60)
    durations, queries, expressions = [], 0, 0
    try:
        for _ in range(runs):
            started = time.perf_counter()
            result = await measure(client, specs, at)
            durations.append(time.perf_counter() - started)
            queries, expressions = result.queries_sent, result.expressions
        # The machine's limit: one typical 30-day query alone, times the query count.
        single = []
        expr = f"sum(increase({specs[0].sli.total}[30d]))"  # type: ignore[union-attr]
        for _ in range(20):
            started = time.perf_counter()
            await client.query(expr, at)
            single.append(time.perf_counter() - started)
    finally:
        await client.close()
    return {
        "measure_seconds_median": statistics.median(durations),
        "measure_seconds_all": durations,
        "queries_sent": queries,
        "expressions": expressions,
        "single_query_seconds_median": statistics.median(single),
    }


async def time_full_pass(settings: Settings, slo_ids: list[uuid.UUID], at: datetime) -> float:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        started = time.perf_counter()
        await evaluate_and_store(
            app.state.sessionmaker, app.state.prometheus, settings, slo_ids, at
        )
        return time.perf_counter() - started


def create_slos(settings: Settings, count: int) -> list[uuid.UUID]:
    from fastapi.testclient import TestClient

    ids = []
    with TestClient(create_app(settings)) as client:
        for job in range(count):
            service = client.post("/api/services", json={"name": f"svc-{job}"}).json()
            slo = client.post(
                "/api/slos",
                json={
                    "service_id": service["id"],
                    "name": "availability",
                    "objective": 99.9,
                    "sli": {
                        "kind": "ratio",
                        "errors": f'http_requests_total{{job="svc-{job}",code="500"}}',
                        "total": f'http_requests_total{{job="svc-{job}"}}',
                    },
                },
            ).json()
            ids.append(uuid.UUID(slo["id"]))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    now = float(int(time.time()) // 60 * 60)
    at = datetime.fromtimestamp(now, UTC)
    prometheus = PrometheusServer()
    postgres = PostgresServer()
    try:
        started = time.perf_counter()
        data = dataset(args.slos, now)
        prometheus.backfill(data)
        prometheus.start()
        backfill_seconds = time.perf_counter() - started
        samples = sum(len(s.samples) for s in data)

        specs = [spec(job) for job in range(args.slos)]
        engine = asyncio.run(time_measure(prometheus.url, specs, at, args.runs))

        postgres.start()
        postgres.create_database("bench")
        settings = Settings(
            database_url=postgres.url("bench"),
            prometheus_url=prometheus.url,
            slo_engine_enabled=False,
        )
        upgrade_to_head(settings)
        slo_ids = create_slos(settings, args.slos)
        full_pass = asyncio.run(time_full_pass(settings, slo_ids, at))
    finally:
        prometheus.remove()
        postgres.stop()
        postgres.remove()

    naive_serial = engine["single_query_seconds_median"] * engine["expressions"]
    result = {
        "benchmark": "slo_engine",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "slos": args.slos,
        "series": len(data),
        "samples": samples,
        "backfill_and_start_seconds": round(backfill_seconds, 2),
        **{k: v for k, v in engine.items() if k != "measure_seconds_all"},
        "full_pass_seconds": round(full_pass, 3),
        "naive_one_query_per_expression_seconds": round(naive_serial, 3),
        "target_seconds": TARGET_SECONDS,
    }
    out = write_result(result, "slo-engine")
    rows = [
        ("SLOs", f"{args.slos}"),
        ("expressions (unique)", f"{engine['expressions']}"),
        ("HTTP queries sent", f"{engine['queries_sent']}"),
        ("measure, median of runs", f"{engine['measure_seconds_median']:.3f} s"),
        ("full pass incl. PostgreSQL writes", f"{full_pass:.3f} s"),
        ("target", f"< {TARGET_SECONDS:.0f} s"),
        ("one 30d query alone (median)", f"{engine['single_query_seconds_median'] * 1000:.1f} ms"),
        ("naive: one query per expression", f"{naive_serial:.1f} s"),
    ]
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
