"""A latency SLI measures the bucket however its series spell `le` (e.g. `0.30`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.slos.engine_helpers import engine_settings, evaluate_at, get_slo
from tests.support.api import create_service, create_slo
from tests.support.prometheus import PrometheusServer, Series

MINUTES = 120
HISTOGRAM = 'rpc_duration_seconds_bucket{job="odd"}'


@pytest.fixture(scope="module")
def odd_prometheus() -> Iterator[tuple[PrometheusServer, float]]:
    """Two hours of a histogram whose client writes `le="0.30"`: 97 of 100 requests fit."""
    now = float(int(datetime.now(UTC).timestamp()) // 60 * 60)
    times = [now - 60 * (MINUTES - k) for k in range(MINUTES + 1)]

    def counter(name: str, per_minute: float, **labels: str) -> Series:
        samples = [(t, k * per_minute) for k, t in enumerate(times)]
        return Series(name, {"job": "odd", **labels}, samples)

    series = [
        counter("rpc_duration_seconds_bucket", 97, le="0.30"),
        counter("rpc_duration_seconds_bucket", 100, le="+Inf"),
        counter("rpc_duration_seconds_count", 100),
    ]
    with PrometheusServer() as server:
        server.backfill(series)
        server.start()
        yield server, now


@pytest.fixture
def client(
    settings: Settings, odd_prometheus: tuple[PrometheusServer, float]
) -> Iterator[TestClient]:
    server, _ = odd_prometheus
    with TestClient(create_app(engine_settings(settings, server.url))) as test_client:
        yield test_client


def test_the_exact_le_text_is_learned_when_the_slo_is_saved(client: TestClient) -> None:
    sli = {"kind": "latency", "histogram": HISTOGRAM, "threshold_seconds": 0.3}
    slo = create_slo(client, create_service(client)["id"], objective=95.0, window_days=1, sli=sli)
    assert slo["sli"]["le"] == "0.30"


def test_a_bucket_spelled_0_30_is_measured_not_read_as_an_outage(
    client: TestClient, odd_prometheus: tuple[PrometheusServer, float]
) -> None:
    _, now = odd_prometheus
    sli = {"kind": "latency", "histogram": HISTOGRAM, "threshold_seconds": 0.3}
    slo = create_slo(client, create_service(client)["id"], objective=95.0, window_days=1, sli=sli)
    evaluate_at(client, [slo["id"]], datetime.fromtimestamp(now, UTC))
    body = get_slo(client, slo["id"])
    assert body["burn_rates"]["1h"] == pytest.approx(0.03 / 0.05, rel=1e-6)
    assert body["evaluation_error"] is None
