"""Specification: services know where their telemetry lives, with defaults from the name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.catalog.telemetry import effective_telemetry
from tests.support.api import assert_problem, create_service


def _effective(service: dict[str, Any]) -> dict[str, Any]:
    effective: dict[str, Any] = service["telemetry_effective"]
    return effective


def test_a_new_service_gets_bindings_derived_from_its_name(client: TestClient) -> None:
    service = create_service(client, name="payment")
    assert service["telemetry"] is None
    effective = _effective(service)
    assert effective["prometheus"]["selector"] == '{job="payment"}'
    assert effective["loki"]["selector"] == '{service_name="payment"}'
    assert effective["tempo"]["service_name"] == "payment"
    assert effective["kubernetes"] == {"namespace": "default", "workload": "payment"}


def test_bindings_set_at_creation_are_kept_and_the_rest_derived(client: TestClient) -> None:
    service = create_service(
        client,
        name="checkout",
        telemetry={
            "prometheus": {"selector": '{app="shop", component="checkout"}'},
            "kubernetes": {"namespace": "shop"},
        },
    )
    assert service["telemetry"]["prometheus"]["selector"] == '{app="shop", component="checkout"}'
    effective = _effective(service)
    assert effective["prometheus"]["selector"] == '{app="shop", component="checkout"}'
    assert effective["kubernetes"] == {"namespace": "shop", "workload": "checkout"}
    assert effective["tempo"]["service_name"] == "checkout"


def test_named_queries_for_the_golden_signals_are_stored(client: TestClient) -> None:
    queries = {
        "selector": '{job="api"}',
        "error_ratio_query": 'sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))',
        "latency_query": "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        "saturation_query": 'avg(container_cpu_usage{job="api"})',
    }
    service = create_service(client, telemetry={"prometheus": queries})
    response = client.get(f"/api/services/{service['id']}")
    assert response.json()["telemetry"]["prometheus"] == queries


def test_patching_the_bindings_replaces_them(client: TestClient) -> None:
    service = create_service(client, telemetry={"loki": {"selector": '{app="a"}'}})
    response = client.patch(
        f"/api/services/{service['id']}", json={"telemetry": {"tempo": {"service_name": "a-svc"}}}
    )
    assert response.status_code == 200, response.text
    telemetry = response.json()["telemetry"]
    assert telemetry["tempo"] == {"service_name": "a-svc"}
    assert telemetry["loki"] is None
    assert _effective(response.json())["loki"]["selector"] == (
        '{service_name="' + service["name"] + '"}'
    )


def test_patching_the_bindings_to_null_returns_to_the_defaults(client: TestClient) -> None:
    service = create_service(client, telemetry={"tempo": {"service_name": "other"}})
    response = client.patch(f"/api/services/{service['id']}", json={"telemetry": None})
    assert response.status_code == 200, response.text
    assert response.json()["telemetry"] is None
    assert _effective(response.json())["tempo"]["service_name"] == service["name"]


def test_renaming_a_service_moves_its_derived_bindings(client: TestClient) -> None:
    service = create_service(client, name="old-name")
    response = client.patch(f"/api/services/{service['id']}", json={"name": "new-name"})
    assert _effective(response.json())["prometheus"]["selector"] == '{job="new-name"}'


@pytest.mark.parametrize(
    ("telemetry", "field"),
    [
        ({"prometheus": {"selector": 'up{job="x"}'}}, "telemetry.prometheus.selector"),
        ({"prometheus": {"selector": "job=x"}}, "telemetry.prometheus.selector"),
        ({"loki": {"selector": '{app="a"} or {app="b"}'}}, "telemetry.loki.selector"),
        (
            {"prometheus": {"error_ratio_query": "sum(rate(x[5m]"}},
            "telemetry.prometheus.error_ratio_query",
        ),
        ({"kubernetes": {"namespace": "Not_A_Namespace"}}, "telemetry.kubernetes.namespace"),
        ({"tempo": {"service_name": "a\u0000b"}}, "telemetry.tempo.service_name"),
        ({"grafana": {}}, "telemetry.grafana"),
    ],
)
def test_invalid_bindings_are_refused_naming_the_field(
    client: TestClient, telemetry: dict[str, Any], field: str
) -> None:
    response = client.post("/api/services", json={"name": "svc", "telemetry": telemetry})
    assert_problem(response, 422, field=field)
    assert client.get("/api/services").json()["items"] == []


def test_a_name_that_cannot_be_a_kubernetes_name_derives_no_workload() -> None:
    effective = effective_telemetry("Payments (EU)!", None)
    assert effective.kubernetes.workload is None
    assert effective.prometheus.selector == '{job="Payments (EU)!"}'


def test_derived_selectors_quote_the_name() -> None:
    effective = effective_telemetry('odd"name', None)
    assert effective.prometheus.selector == '{job="odd\\"name"}'
