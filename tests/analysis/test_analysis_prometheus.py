"""Evidence from a real Prometheus: the service whose error ratio jumped first is the suspect.

A Prometheus 2.42 (the Debian binaries) is backfilled with `http_requests_total{job, code}`
counters of three services, a sample every 15 s for the last 2.5 h. `checkout` and `search`
answer 0.1 % errors throughout; `payments` does too until `JUMP_AT` (15 minutes before the data
ends, on the sample grid), then 20 %. An incident naming all three is analysed by an app whose
Prometheus is that one, whose Loki and Tempo refuse connections and whose Kubernetes is off.

On the start time: the counters carry the higher slope from the sample at `JUMP_AT` on (the
increase that sample records is the first at 20 %). The gatherer's default query is a
`rate(...[5m])` ratio, which smears a step into a 5-minute ramp; but the first evaluation at or
after `JUMP_AT` already holds one 20 % interval among twenty (about 1.1 % against 0.1 %, ten
times the smallest error-ratio change the analysis notices), so the change point sits at the
ramp's foot. The evaluation grid is the range query's step (15 s, see `analysis_settings`),
which is not aligned with the samples, so the tolerance is one query step either side of
`JUMP_AT`: the issue's "within one step". No custom query is needed for that.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.analysis import (
    analysis_settings,
    evidence_of,
    timeline_of,
    wait_for_analysis,
)
from tests.support.api import create_incident, create_service
from tests.support.prometheus import PrometheusServer, Series

SAMPLE_STEP = 15  # seconds between samples, and the analysis' range-query step
HISTORY = timedelta(hours=2, minutes=30)
JUMP_BEFORE_END = timedelta(minutes=15)
REQUESTS_PER_STEP = 150.0  # 10 requests a second
BASELINE_ERROR_RATIO = 0.001
JUMP_ERROR_RATIO = 0.20
SERVICES = ("checkout", "payments", "search")
TOLERANCE = timedelta(seconds=SAMPLE_STEP)


def error_ratio_at(service: str, sample_time: int, jump_at: int, rng: random.Random) -> float:
    """The share of errors among the requests of the interval ending at `sample_time`."""
    if service == "payments" and sample_time >= jump_at:
        return JUMP_ERROR_RATIO * rng.uniform(0.95, 1.05)
    return BASELINE_ERROR_RATIO * rng.uniform(0.7, 1.3)


def request_series(end: int, jump_at: int) -> list[Series]:
    """`http_requests_total{job, code="200"|"500"}` of the three services up to `end`."""
    rng = random.Random(5)
    first = end - int(HISTORY.total_seconds())
    series = []
    for service in SERVICES:
        ok, errors = 0.0, 0.0
        ok_samples, error_samples = [], []
        for sample_time in range(first, end + 1, SAMPLE_STEP):
            if sample_time > first:
                requests = REQUESTS_PER_STEP * rng.uniform(0.9, 1.1)
                failed = requests * error_ratio_at(service, sample_time, jump_at, rng)
                ok += requests - failed
                errors += failed
            ok_samples.append((float(sample_time), ok))
            error_samples.append((float(sample_time), errors))
        series.append(Series("http_requests_total", {"job": service, "code": "200"}, ok_samples))
        series.append(Series("http_requests_total", {"job": service, "code": "500"}, error_samples))
    return series


class RequestsPrometheus:
    """A started Prometheus holding `request_series`, and the moment of the jump."""

    def __init__(self, server: PrometheusServer, jump_at: int) -> None:
        self.server = server
        self.jump_at = jump_at

    @property
    def jump(self) -> datetime:
        return datetime.fromtimestamp(self.jump_at, UTC)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[RequestsPrometheus]:
    """The requests of the three services, ending at the last sample step before now."""
    end = int(time.time()) // SAMPLE_STEP * SAMPLE_STEP
    jump_at = end - int(JUMP_BEFORE_END.total_seconds())
    with PrometheusServer() as server:
        server.backfill(request_series(end, jump_at))
        server.start()
        yield RequestsPrometheus(server, jump_at)


@pytest.fixture
def analysed(settings: Settings, prometheus: RequestsPrometheus) -> Iterator[dict[str, Any]]:
    """An incident of the three services, analysed: its id, analysis, evidence and timeline."""
    live = analysis_settings(settings, prometheus_url=prometheus.server.url)
    with TestClient(create_app(live)) as client:
        ids = [create_service(client, name=name)["id"] for name in SERVICES]
        incident = create_incident(client, title="Checkout failing", service_ids=ids)
        analysis = wait_for_analysis(client, incident["id"])
        yield {
            "analysis": analysis,
            "evidence": evidence_of(client, incident["id"]),
            "timeline": timeline_of(client, incident["id"], "metric_anomaly"),
        }


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_the_dataset_has_the_jump_it_claims(prometheus: RequestsPrometheus) -> None:
    ratio = (
        'sum(increase(http_requests_total{job="payments", code="500"}[5m]))'
        ' / sum(increase(http_requests_total{job="payments"}[5m]))'
    )
    before = prometheus.server.query_value(ratio, prometheus.jump_at - SAMPLE_STEP)
    after = prometheus.server.query_value(ratio, prometheus.jump_at + 300)
    assert before == pytest.approx(BASELINE_ERROR_RATIO, rel=0.3)
    assert after == pytest.approx(JUMP_ERROR_RATIO, rel=0.05)


def test_the_service_whose_error_ratio_jumped_ranks_first(analysed: dict[str, Any]) -> None:
    analysis = analysed["analysis"]
    assert analysis["status"] == "done", analysis
    hypotheses = analysis["hypotheses"]
    assert hypotheses, analysis
    assert hypotheses[0]["service"] == "payments", hypotheses
    assert [h["service"] for h in hypotheses] == ["payments"], "steady services are no suspects"


def test_the_jump_is_a_metric_anomaly_that_starts_within_one_step(
    analysed: dict[str, Any], prometheus: RequestsPrometheus
) -> None:
    anomalies = [
        item
        for item in analysed["evidence"]
        if item["service"] == "payments" and item["kind"] == "metric_anomaly"
    ]
    assert len(anomalies) == 1, analysed["evidence"]
    anomaly = anomalies[0]
    assert anomaly["source"] == "prometheus"
    assert anomaly["figures"]["signal"] == "error_ratio"
    started = parse_time(anomaly["started_at"])
    assert abs(started - prometheus.jump) <= TOLERANCE, (
        f"the anomaly starts at {started}, the jump is at {prometheus.jump}"
    )
    hypothesis = analysed["analysis"]["hypotheses"][0]
    assert anomaly["id"] in hypothesis["evidence_ids"]
    assert abs(parse_time(hypothesis["started_at"]) - prometheus.jump) <= TOLERANCE


def test_the_timeline_has_the_anomaly_with_a_query_that_reproduces_it(
    analysed: dict[str, Any], prometheus: RequestsPrometheus
) -> None:
    events = analysed["timeline"]
    assert len(events) == 1, events
    event = events[0]
    assert event["source"] == "prometheus"
    assert event["actor"] == "analysis"
    assert abs(parse_time(event["occurred_at"]) - prometheus.jump) <= TOLERANCE
    query = event["metadata"]["query"]
    assert 'job="payments"' in query
    # The query, asked of the same Prometheus, shows the jump: a human can reproduce it.
    before = prometheus.server.query_value(query, prometheus.jump_at - 60)
    after = prometheus.server.query_value(query, prometheus.jump_at + 300)
    assert before < 0.01 < 0.1 < after


def test_a_partial_analysis_reports_each_backend_and_no_error(analysed: dict[str, Any]) -> None:
    analysis = analysed["analysis"]
    backends = analysis["backends"]
    assert backends["prometheus"] == "ok"
    assert backends["loki"].startswith("unavailable"), backends
    assert backends["tempo"].startswith("unavailable"), backends
    assert backends["kubernetes"] == "not_configured"
    assert analysis["status"] == "done"
    assert analysis["error"] is None
