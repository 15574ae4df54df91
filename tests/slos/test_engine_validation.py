"""Bad SLIs are refused before anything is stored: locally (kind, PromQL, selectors, the
`{{window}}` placeholder) and by the real Prometheus (a latency threshold that is not one of
the histogram's buckets, a query it cannot run). Figures the engine computes cannot be set by
hand while the SLO has an SLI; `sli: null` makes it manual again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.slos.engine_helpers import (
    Dataset,
    dataset_prometheus,
    engine_settings,
    evaluate_at,
    get_slo,
    new_slo,
    sli_for,
)
from tests.support.api import assert_problem, create_service, create_slo

STEADY_TOTAL = 'http_requests_total{job="steady"}'
STEADY_ERRORS = 'http_requests_total{job="steady",code="500"}'
HISTOGRAM = 'http_request_duration_seconds_bucket{job="latency"}'

# (SLI, the field the problem must name).
BAD_SLIS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown kind": ({"kind": "apdex", "total": STEADY_TOTAL}, "sli"),
    "no kind": ({"total": STEADY_TOTAL, "errors": STEADY_ERRORS}, "sli"),
    "invalid PromQL": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": 'http_requests_total{job="steady"'},
        "sli.ratio.total",
    ),
    "an expression for a selector": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": f"rate({STEADY_TOTAL}[5m])"},
        "sli.ratio.total",
    ),
    "a range for a selector": (
        {"kind": "ratio", "errors": f"{STEADY_ERRORS}[5m]", "total": STEADY_TOTAL},
        "sli.ratio.errors",
    ),
    "a selector with offset": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": f"{STEADY_TOTAL} offset 1h"},
        "sli.ratio.total",
    ),
    "a selector without a metric name": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": '{job="steady"}'},
        "sli.ratio.total",
    ),
    "a selector joining matchers with or": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": 'x{job="a" or job="b"}'},
        "sli.ratio.total",
    ),
    "good and errors both": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "good": STEADY_ERRORS, "total": STEADY_TOTAL},
        "sli.ratio",
    ),
    "neither good nor errors": ({"kind": "ratio", "total": STEADY_TOTAL}, "sli.ratio"),
    "no total": ({"kind": "ratio", "errors": STEADY_ERRORS}, "sli.ratio.total"),
    "an unknown field": (
        {"kind": "ratio", "errors": STEADY_ERRORS, "total": STEADY_TOTAL, "bad": "x"},
        "sli.ratio.bad",
    ),
    "a histogram that is not _bucket": (
        {
            "kind": "latency",
            "histogram": 'http_request_duration_seconds_count{job="latency"}',
            "threshold_seconds": 0.3,
        },
        "sli.latency.histogram",
    ),
    "a histogram matching on le": (
        {
            "kind": "latency",
            "histogram": 'http_request_duration_seconds_bucket{job="latency",le="0.3"}',
            "threshold_seconds": 0.3,
        },
        "sli.latency.histogram",
    ),
    "a zero threshold": (
        {"kind": "latency", "histogram": HISTOGRAM, "threshold_seconds": 0},
        "sli.latency.threshold_seconds",
    ),
    "a query without {{window}}": (
        {"kind": "query", "error_ratio_query": f"sum(rate({STEADY_ERRORS}[5m]))"},
        "sli.query",
    ),
    "a query that is not PromQL": (
        {"kind": "query", "error_ratio_query": "sum(rate(x[{{window}}])"},
        "sli.query",
    ),
    "a bool gauge expression": (
        {"kind": "bool_gauge", "metric": 'probe_success{job="probe"} == 1'},
        "sli.bool_gauge.metric",
    ),
}

# Refused by Prometheus itself (the SLI parses locally).
PROMETHEUS_REFUSES: dict[str, tuple[dict[str, Any], str]] = {
    "a threshold that is not a bucket": (
        {"kind": "latency", "histogram": HISTOGRAM, "threshold_seconds": 0.25},
        "sli.threshold_seconds",
    ),
    "a query that fails when run": (
        {
            "kind": "query",
            "error_ratio_query": f"sum(rate({STEADY_TOTAL}[{{{{window}}}}]))"
            f" / on() rate({STEADY_TOTAL}[{{{{window}}}}])",
        },
        "sli",
    ),
    "a query that gives a scalar": (
        {
            "kind": "query",
            "error_ratio_query": f"scalar(sum(rate({STEADY_ERRORS}[{{{{window}}}}])))",
        },
        "sli",
    ),
}


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def client(settings: Settings, dataset: Dataset) -> Iterator[TestClient]:
    """An app on this backend, checking SLIs against the dataset's Prometheus."""
    with TestClient(create_app(engine_settings(settings, dataset.server.url))) as test_client:
        yield test_client


@pytest.fixture
def service_id(client: TestClient) -> str:
    """A service to hang SLOs on."""
    return str(create_service(client)["id"])


def slo_count(client: TestClient) -> int:
    """How many SLOs there are."""
    return len(client.get("/api/slos", params={"limit": 500}).json()["items"])


def body(service_id: str, sli: dict[str, Any]) -> dict[str, Any]:
    """A create body with `sli`."""
    return {"service_id": service_id, "name": "availability", "objective": 99.9, "sli": sli}


@pytest.mark.parametrize("case", [*BAD_SLIS, *PROMETHEUS_REFUSES])
def test_a_bad_sli_is_refused_naming_the_field_and_nothing_is_created(
    client: TestClient, service_id: str, case: str
) -> None:
    sli, field = {**BAD_SLIS, **PROMETHEUS_REFUSES}[case]
    response = client.post("/api/slos", json=body(service_id, sli))
    assert_problem(response, 422, field)
    assert slo_count(client) == 0


PATCH_CASES = [
    "unknown kind",
    "an expression for a selector",
    "good and errors both",
    "a histogram that is not _bucket",
    "a query without {{window}}",
    *PROMETHEUS_REFUSES,
]


@pytest.mark.parametrize("case", PATCH_CASES)
def test_a_bad_sli_in_a_patch_is_refused_and_changes_nothing(
    client: TestClient, service_id: str, case: str
) -> None:
    slo = create_slo(client, service_id, sli=sli_for("steady"))
    sli, field = {**BAD_SLIS, **PROMETHEUS_REFUSES}[case]
    response = client.patch(f"/api/slos/{slo['id']}", json={"sli": sli, "objective": 99.5})
    assert_problem(response, 422, field)
    assert get_slo(client, slo["id"]) == slo


def test_the_threshold_problem_lists_the_buckets(client: TestClient, service_id: str) -> None:
    sli, _ = PROMETHEUS_REFUSES["a threshold that is not a bucket"]
    problem = assert_problem(client.post("/api/slos", json=body(service_id, sli)), 422)
    assert "0.25" in problem["detail"]
    assert "0.1, 0.3, 1" in problem["detail"]


@pytest.mark.parametrize("threshold", [0.1, 0.3, 1, 1.0])
def test_every_bucket_is_a_valid_threshold(
    client: TestClient, service_id: str, threshold: float
) -> None:
    sli = {"kind": "latency", "histogram": HISTOGRAM, "threshold_seconds": threshold}
    assert client.post("/api/slos", json=body(service_id, sli)).status_code == 201


def test_every_kind_of_valid_sli_is_accepted_and_stored_as_sent_with_the_le_it_found(
    client: TestClient, service_id: str
) -> None:
    query = (
        f"sum(rate({STEADY_ERRORS}[{{{{window}}}}])) / sum(rate({STEADY_TOTAL}[{{{{window}}}}]))"
    )
    slis = [
        sli_for("steady"),
        {
            "kind": "ratio",
            "good": 'http_requests_total{job="steady",code="200"}',
            "total": STEADY_TOTAL,
        },
        sli_for("latency"),
        sli_for("probe"),
        {"kind": "query", "error_ratio_query": query},
        # Nothing there yet: accepted, the engine will say no_data.
        {"kind": "ratio", "errors": 'new_total{code="500"}', "total": "new_total"},
    ]
    for index, sli in enumerate(slis):
        created = create_slo(client, service_id, name=f"slo-{index}", sli=sli)
        stored = {key: value for key, value in created["sli"].items() if value is not None}
        # A latency SLI learns its bucket's `le` text from Prometheus; the rest is as sent.
        learned = {"le": "0.3"} if sli["kind"] == "latency" else {}
        assert stored == {**sli, **learned}
        assert created["status"] == "unknown"
        assert created["evaluated_at"] is None


# --- computed figures and manual SLOs -------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"error_budget_remaining": 80}, {"status": "healthy"}, {"error_budget_remaining": None}],
)
def test_figures_the_engine_computes_cannot_be_patched(
    client: TestClient, dataset: Dataset, change: dict[str, Any]
) -> None:
    slo = new_slo(client, "steady")
    evaluate_at(client, [slo["id"]], dataset.at)
    before = get_slo(client, slo["id"])
    response = client.patch(f"/api/slos/{slo['id']}", json=change)
    problem = assert_problem(response, 409, next(iter(change)))
    assert "sli" in problem["detail"]
    assert get_slo(client, slo["id"]) == before


def test_a_budget_cannot_be_set_in_the_patch_that_adds_an_sli(
    client: TestClient, service_id: str
) -> None:
    manual = create_slo(client, service_id, error_budget_remaining=70, status="healthy")
    response = client.patch(
        f"/api/slos/{manual['id']}", json={"sli": sli_for("steady"), "error_budget_remaining": 80}
    )
    assert_problem(response, 409, "error_budget_remaining")
    assert get_slo(client, manual["id"]) == manual


@pytest.mark.parametrize(
    "given", [{"error_budget_remaining": 80}, {"status": "healthy"}, {"status": "breached"}]
)
def test_figures_the_engine_computes_cannot_be_given_with_an_sli(
    client: TestClient, service_id: str, given: dict[str, Any]
) -> None:
    sent = {**body(service_id, sli_for("steady")), **given}
    assert_problem(client.post("/api/slos", json=sent), 409, next(iter(given)))
    assert slo_count(client) == 0


def test_the_engine_s_starting_values_may_be_given_with_an_sli(
    client: TestClient, service_id: str
) -> None:
    sent = {
        **body(service_id, sli_for("steady")),
        "status": "unknown",
        "error_budget_remaining": None,
    }
    assert client.post("/api/slos", json=sent).status_code == 201


def test_sli_null_makes_the_slo_manual_again(client: TestClient, dataset: Dataset) -> None:
    slo = new_slo(client, "steady")
    evaluate_at(client, [slo["id"]], dataset.at)
    assert get_slo(client, slo["id"])["error_budget_remaining"] == pytest.approx(50, abs=1e-6)

    response = client.patch(f"/api/slos/{slo['id']}", json={"sli": None})
    assert response.status_code == 200, response.text
    manual = response.json()
    assert manual["sli"] is None
    assert manual["status"] == "unknown"
    for field in ("error_budget_remaining", "sli_value", "burn_rates", "evaluated_at"):
        assert manual[field] is None, field
    assert manual["stale"] is False

    response = client.patch(
        f"/api/slos/{slo['id']}", json={"error_budget_remaining": 85.5, "status": "healthy"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["error_budget_remaining"] == 85.5
    assert_problem(client.post(f"/api/slos/{slo['id']}/evaluate"), 409)


def test_sli_null_with_a_budget_keeps_the_budget(client: TestClient, dataset: Dataset) -> None:
    """The figures sent with `sli: null` are the new manual ones, not wiped with the old."""
    slo = new_slo(client, "latency")
    evaluate_at(client, [slo["id"]], dataset.at)
    response = client.patch(
        f"/api/slos/{slo['id']}",
        json={"sli": None, "error_budget_remaining": 42.0, "status": "at_risk"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["error_budget_remaining"] == 42.0
    assert response.json()["status"] == "at_risk"
    assert get_slo(client, slo["id"]) == response.json()


def test_sli_null_on_a_manual_slo_keeps_its_figures(client: TestClient, service_id: str) -> None:
    manual = create_slo(client, service_id, error_budget_remaining=70, status="healthy")
    response = client.patch(f"/api/slos/{manual['id']}", json={"sli": None})
    assert response.status_code == 200, response.text
    assert response.json()["error_budget_remaining"] == 70
    assert response.json()["status"] == "healthy"


def test_a_manual_slo_given_an_sli_is_measured(client: TestClient, dataset: Dataset) -> None:
    service_id = str(create_service(client)["id"])
    manual = create_slo(client, service_id, error_budget_remaining=70, status="healthy")
    response = client.patch(f"/api/slos/{manual['id']}", json={"sli": sli_for("latency")})
    assert response.status_code == 200, response.text
    evaluate_at(client, [manual["id"]], dataset.at)
    measured = get_slo(client, manual["id"])
    assert measured["status"] == "breached"
    assert measured["error_budget_remaining"] == pytest.approx(-100, abs=1e-6)


def test_evaluate_a_manual_slo_is_409_and_unknown_is_404(
    client: TestClient, service_id: str
) -> None:
    manual = create_slo(client, service_id)
    assert_problem(client.post(f"/api/slos/{manual['id']}/evaluate"), 409)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_problem(client.post(f"/api/slos/{unknown}/evaluate"), 404)
