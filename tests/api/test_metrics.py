"""Specification of `/metrics`: Prometheus text of requests, latency and the database pool."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.api import create_incident


def _samples(client: TestClient) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=" in response.headers["content-type"]
    assert "# TYPE http_requests_total counter" in response.text


def test_requests_are_counted_by_route_template_method_and_status(client: TestClient) -> None:
    incident = create_incident(client)
    client.get(f"/api/incidents/{incident['id']}")
    client.get(f"/api/incidents/{incident['id']}")
    client.get("/api/incidents/00000000-0000-4000-8000-0000000000ff")
    samples = _samples(client)
    route = "/api/incidents/{incident_id}"
    assert _value(samples, "http_requests_total", method="GET", route=route, status="200") == 2
    assert _value(samples, "http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        _value(samples, "http_requests_total", method="POST", route="/api/incidents", status="201")
        == 1
    )


def test_no_series_is_labelled_with_a_raw_id(client: TestClient) -> None:
    incident = create_incident(client)
    client.get(f"/api/incidents/{incident['id']}")
    assert incident["id"] not in client.get("/metrics").text


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    for path in ("/a", "/b", "/c/d"):
        client.get(path)
    samples = _samples(client)
    assert (
        _value(samples, "http_requests_total", method="GET", route="unmatched", status="404") == 3
    )
    assert not [s for s in samples if s.labels.get("route") in ("/a", "/b", "/c/d")]


def test_latency_is_a_histogram_by_method_and_route(client: TestClient) -> None:
    client.get("/api/services")
    client.get("/api/services")
    samples = _samples(client)
    labels = {"method": "GET", "route": "/api/services"}
    assert _value(samples, "http_request_duration_seconds_count", **labels) == 2
    total = _value(samples, "http_request_duration_seconds_sum", **labels)
    assert total is not None
    assert total > 0
    assert _value(samples, "http_request_duration_seconds_bucket", **labels, le="+Inf") == 2
    buckets = [
        s
        for s in samples
        if s.name == "http_request_duration_seconds_bucket" and s.labels["route"] == "/api/services"
    ]
    assert len(buckets) > 5
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts)


def test_database_pool_gauges_are_exposed(client: TestClient) -> None:
    client.get("/api/services")  # opens a connection
    samples = _samples(client)
    for name in ("db_pool_size", "db_pool_checked_out", "db_pool_checked_in", "db_pool_overflow"):
        assert _value(samples, name) is not None, name
    assert _value(samples, "db_pool_checked_out") == 0
    checked_in = _value(samples, "db_pool_checked_in")
    assert checked_in is not None
    assert checked_in >= 1


def test_each_app_counts_only_its_own_requests(settings: Settings) -> None:
    """Apps have their own registry, so several in one process never mix their numbers."""
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        first.get("/api/services")
        first.get("/api/services")
        second.get("/api/services")
        first_count = _value(_samples(first), "http_requests_total", route="/api/services")
        second_count = _value(_samples(second), "http_requests_total", route="/api/services")
    assert (first_count, second_count) == (2, 1)
