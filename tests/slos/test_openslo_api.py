"""Specification of `/api/openslo`: import OpenSLO v1 YAML all-or-nothing, export it again.

Runs on SQLite and PostgreSQL (the `settings` fixture). The router is included here only
while app.py does not include it yet, so these tests hold before and after it is wired.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.slos.models import SLO
from reliability_studio.slos.openslo_router import router as openslo_router
from tests.support.api import assert_problem, create_service, create_slo

YAML = {"Content-Type": "application/yaml"}

SERVICE = """
apiVersion: openslo/v1
kind: Service
metadata:
  name: payments
  displayName: Payment Service
spec:
  description: Takes the money
"""

AVAILABILITY = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
  displayName: API Availability
spec:
  service: payments
  indicator:
    metadata:
      name: api-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="api",code=~"5.."}
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{job="api"}
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"""

LATENCY = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-latency
spec:
  service: checkout
  indicatorRef: fast-requests
  timeWindow:
    - duration: 1M
      calendar:
        startTime: 2024-01-01 00:00:00
        timeZone: Europe/Paris
  budgetingMethod: Occurrences
  objectives:
    - targetPercent: 99
"""

FAST_REQUESTS = """
apiVersion: openslo/v1
kind: SLI
metadata:
  name: fast-requests
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: http_request_duration_seconds_bucket{job="checkout",le="0.3"}
    total:
      metricSource:
        type: Prometheus
        spec:
          query: http_request_duration_seconds_count{job="checkout"}
"""


def upload(*documents: str) -> str:
    return "---".join(documents)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the app, with the OpenSLO routes whether app.py includes them yet or not."""
    app = create_app(settings)
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/api/openslo" not in paths:
        app.include_router(openslo_router)
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, text: str, **params: Any) -> Any:
    return client.post("/api/openslo", content=text.encode(), headers=YAML, params=params)


def items(client: TestClient, path: str) -> list[dict[str, Any]]:
    response = client.get(path, params={"limit": 500})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def next_evaluations(settings: Settings) -> dict[str, datetime | None]:
    """Each SLO's `next_evaluation_at`, by name (not part of the API)."""

    async def read() -> dict[str, datetime | None]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(select(SLO.name, SLO.next_evaluation_at))
                return {name: due for name, due in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


# --- import --------------------------------------------------------------------------------


def test_import_creates_services_and_slos(client: TestClient, settings: Settings) -> None:
    response = post(client, upload(SERVICE, AVAILABILITY, FAST_REQUESTS, LATENCY))

    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["dry_run"] is False
    assert [(s["name"], s["action"]) for s in summary["services"]] == [
        ("Payment Service", "created"),
        ("checkout", "created"),
    ]
    assert [(s["name"], s["service_name"], s["action"]) for s in summary["slos"]] == [
        ("API Availability", "Payment Service", "created"),
        ("checkout-latency", "checkout", "created"),
    ]
    assert summary["ignored"] == []

    services = {s["name"]: s for s in items(client, "/api/services")}
    assert services["Payment Service"]["description"] == "Takes the money"
    assert {s["id"] for s in summary["services"]} == {s["id"] for s in services.values()}
    slos = {s["name"]: s for s in items(client, "/api/slos")}
    availability = slos["API Availability"]
    assert availability["id"] == summary["slos"][0]["id"]
    assert availability["service_id"] == services["Payment Service"]["id"]
    assert (availability["objective"], availability["window_days"]) == (99.9, 28)
    assert availability["calendar_period"] is None
    assert availability["sli"]["kind"] == "ratio"
    assert availability["sli"]["errors"] == 'http_requests_total{job="api",code=~"5.."}'
    latency = slos["checkout-latency"]
    assert (latency["calendar_period"], latency["timezone"]) == ("month", "Europe/Paris")
    assert latency["objective"] == 99.0
    assert latency["sli"] == {
        "kind": "latency",
        "histogram": 'http_request_duration_seconds_bucket{job="checkout"}',
        "threshold_seconds": 0.3,
    }
    due = next_evaluations(settings)
    assert due["API Availability"] is not None
    assert due["checkout-latency"] is not None


def test_an_existing_catalog_service_is_used_not_duplicated(client: TestClient) -> None:
    existing = create_service(client, name="checkout", team="shop")
    response = post(client, upload(FAST_REQUESTS, LATENCY))

    assert response.status_code == 201, response.text
    [service] = response.json()["services"]
    assert (service["id"], service["action"]) == (existing["id"], "unchanged")
    assert response.json()["slos"][0]["service_id"] == existing["id"]
    [listed] = items(client, "/api/services")
    assert listed["team"] == "shop"


def test_reimport_updates_instead_of_duplicating(client: TestClient, settings: Settings) -> None:
    first = post(client, upload(SERVICE, AVAILABILITY)).json()
    slo_id = first["slos"][0]["id"]

    again = post(client, upload(SERVICE, AVAILABILITY))
    assert again.status_code == 200, again.text
    assert [s["action"] for s in again.json()["slos"]] == ["unchanged"]
    assert [s["action"] for s in again.json()["services"]] == ["unchanged"]

    changed = AVAILABILITY.replace("target: 0.999", "target: 0.995").replace("28d", "7d")
    response = post(client, upload(SERVICE.replace("Takes the money", "Pays"), changed))
    assert response.status_code == 200, response.text
    summary = response.json()
    assert [(s["id"], s["action"]) for s in summary["slos"]] == [(slo_id, "updated")]
    assert [s["action"] for s in summary["services"]] == ["updated"]

    [slo] = items(client, "/api/slos")
    assert (slo["id"], slo["objective"], slo["window_days"]) == (slo_id, 99.5, 7)
    assert items(client, "/api/services")[0]["description"] == "Pays"
    assert next_evaluations(settings)["API Availability"] is not None


def test_import_gives_a_manual_slo_of_the_same_name_its_sli(client: TestClient) -> None:
    service = create_service(client, name="checkout")
    manual = create_slo(client, service["id"], name="checkout-latency", objective=90)

    response = post(client, upload(FAST_REQUESTS, LATENCY))

    assert response.status_code == 200, response.text
    assert [(s["id"], s["action"]) for s in response.json()["slos"]] == [(manual["id"], "updated")]
    [slo] = items(client, "/api/slos")
    assert slo["sli"]["kind"] == "latency"
    assert slo["objective"] == 99.0


def test_an_upload_with_one_bad_document_writes_nothing(client: TestClient) -> None:
    create_service(client, name="Payment Service", description="before")
    bad = LATENCY.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices")
    response = post(
        client,
        upload(SERVICE.replace("Takes the money", "after"), AVAILABILITY, FAST_REQUESTS, bad),
    )

    problem = assert_problem(response, 422, "documents.3.spec.budgetingMethod")
    [error] = problem["errors"]
    assert error["location"] == "body"
    assert error["message"] == (
        'SLO "checkout-latency": spec.budgetingMethod: Timeslices is not supported; use '
        "Occurrences (good and bad events counted over the whole window)"
    )
    assert problem["detail"].startswith('Nothing was imported: SLO "checkout-latency"')
    assert items(client, "/api/slos") == []
    [service] = items(client, "/api/services")
    assert service["description"] == "before"


def test_every_refusal_is_listed(client: TestClient) -> None:
    composite = AVAILABILITY.replace("- target: 0.999", "- target: 0.999\n    - target: 0.99")
    thresholds = FAST_REQUESTS.replace("ratioMetric:", "thresholdMetric:")
    response = post(client, upload(composite, thresholds, LATENCY))

    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == [
        "documents.0.spec.objectives",
        "documents.1.spec.thresholdMetric",
    ]
    assert "(and 1 more)" in problem["detail"]


def test_dry_run_reports_and_writes_nothing(client: TestClient) -> None:
    response = post(client, upload(SERVICE, AVAILABILITY), dry_run="true")

    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["dry_run"] is True
    assert [(s["id"], s["action"]) for s in summary["services"]] == [(None, "created")]
    assert [(s["id"], s["service_id"], s["action"]) for s in summary["slos"]] == [
        (None, None, "created")
    ]
    assert items(client, "/api/services") == []
    assert items(client, "/api/slos") == []


def test_ignored_documents_are_reported(client: TestClient) -> None:
    source = (
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata:\n  name: prom\n"
        "spec:\n  type: Prometheus\n  connectionDetails:\n    url: http://prometheus:9090\n"
    )
    response = post(client, upload(source, FAST_REQUESTS))

    assert response.status_code == 200, response.text
    summary = response.json()
    assert [(item["document"], item["kind"], item["name"]) for item in summary["ignored"]] == [
        (0, "DataSource", "prom"),
        (1, "SLI", "fast-requests"),
    ]
    assert summary["slos"] == []


# --- export --------------------------------------------------------------------------------


def test_export_then_import_round_trip(client: TestClient) -> None:
    payments = create_service(client, name="Payment Service", description="Takes the money")
    checkout = create_service(client, name="checkout")
    ratio = {"kind": "ratio", "good": 'rpc_total{code="OK"}', "total": "rpc_total"}
    latency = {
        "kind": "latency",
        "histogram": 'http_request_duration_seconds_bucket{job="api"}',
        "threshold_seconds": 1.0,
    }
    create_slo(client, payments["id"], name="API Availability", sli=ratio, description="Hi")
    create_slo(
        client,
        checkout["id"],
        name="Latency",
        objective=99.5,
        window_days=7,
        sli=latency,
    )
    create_slo(
        client,
        checkout["id"],
        name="Monthly",
        objective=95,
        calendar_period="quarter",
        timezone="America/New_York",
        sli=ratio,
    )
    create_slo(client, checkout["id"], name="Manual")
    create_slo(client, checkout["id"], name="Probe", sli={"kind": "bool_gauge", "metric": "up"})
    before = sorted(items(client, "/api/slos"), key=lambda slo: slo["name"])

    exported = client.get("/api/openslo")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/yaml")
    text = exported.text
    assert '# not exportable: "Manual" of service "checkout": a manual SLO' in text
    assert '# not exportable: "Probe" of service "checkout": a bool_gauge SLI' in text
    kinds = [document["kind"] for document in yaml.safe_load_all(text)]
    assert kinds == ["Service", "Service", "SLO", "SLO", "SLO"]

    same = post(client, text)  # into the same database: nothing to change
    assert same.status_code == 200, same.text
    assert {s["action"] for s in same.json()["slos"]} == {"unchanged"}
    assert {s["action"] for s in same.json()["services"]} == {"unchanged"}

    for slo in before:
        assert client.delete(f"/api/slos/{slo['id']}").status_code == 204
    for service in (payments, checkout):
        assert client.delete(f"/api/services/{service['id']}").status_code == 204

    again = post(client, text)
    assert again.status_code == 201, again.text
    after = sorted(items(client, "/api/slos"), key=lambda slo: slo["name"])
    services = {s["id"]: s for s in items(client, "/api/services")}
    fields = ("name", "objective", "calendar_period", "timezone", "description")
    exportable = [slo for slo in before if slo["name"] not in ("Manual", "Probe")]
    assert [tuple(slo[f] for f in fields) for slo in after] == [
        tuple(slo[f] for f in fields) for slo in exportable
    ]
    for old, new in zip(exportable, after, strict=True):
        assert _without_nulls(new["sli"]) == _without_nulls(old["sli"])
        if old["calendar_period"] is None:
            assert new["window_days"] == old["window_days"]
    assert {s["name"]: s["description"] for s in services.values()} == {
        "Payment Service": "Takes the money",
        "checkout": None,
    }


def test_export_of_one_service(client: TestClient) -> None:
    post(client, upload(SERVICE, AVAILABILITY, FAST_REQUESTS, LATENCY))
    checkout = next(s for s in items(client, "/api/services") if s["name"] == "checkout")

    response = client.get("/api/openslo", params={"service_id": checkout["id"]})

    assert response.status_code == 200, response.text
    documents = list(yaml.safe_load_all(response.text))
    assert [(d["kind"], d["metadata"]["displayName"]) for d in documents] == [
        ("Service", "checkout"),
        ("SLO", "checkout-latency"),
    ]


def test_export_of_an_unknown_service_is_404(client: TestClient) -> None:
    response = client.get("/api/openslo", params={"service_id": str(uuid.uuid4())})
    assert_problem(response, 404)


def test_export_of_nothing_is_a_comment(client: TestClient) -> None:
    response = client.get("/api/openslo")
    assert response.status_code == 200, response.text
    assert list(yaml.safe_load_all(response.text)) == []


# --- malformed requests --------------------------------------------------------------------


def test_malformed_yaml_is_400(client: TestClient) -> None:
    problem = assert_problem(post(client, "kind: SLO\nspec: [unclosed\n"), 400)
    assert problem["title"] == "Malformed YAML"
    assert "line" in problem["detail"]
    assert items(client, "/api/services") == []


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_body_that_is_not_yaml_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/openslo", content=upload(SERVICE).encode(), headers=headers)
    assert_problem(response, 415)


@pytest.mark.parametrize("content_type", ["text/yaml", "application/x-yaml; charset=utf-8"])
def test_every_yaml_media_type_is_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/api/openslo", content=upload(SERVICE).encode(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


def test_a_body_that_is_not_utf8_is_400(client: TestClient) -> None:
    response = client.post("/api/openslo", content=b"kind: \xff\xfe", headers=YAML)
    assert_problem(response, 400)


def test_an_empty_upload_is_422(client: TestClient) -> None:
    problem = assert_problem(post(client, "# nothing here\n"), 422)
    assert "no OpenSLO documents" in problem["detail"]


def test_a_body_over_the_limit_is_413(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1024})
    app = create_app(small)
    if "/api/openslo" not in {getattr(route, "path", None) for route in app.routes}:
        app.include_router(openslo_router)
    with TestClient(app) as client:
        response = client.post("/api/openslo", content=b"#" * 2048, headers=YAML)
    assert_problem(response, 413)


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}
