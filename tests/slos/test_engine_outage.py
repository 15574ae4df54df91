"""Prometheus goes away and comes back: SLOs keep their last figures, marked stale with status
`unknown`, the API keeps answering (never a 500), and the next evaluation after Prometheus
returns is fresh again. This module's Prometheus is its own, so stopping it disturbs nobody.

Also: one SLO that Prometheus refuses, or whose stored SLI is no longer valid, is `unknown`
on its own and never holds back the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.slos import alerting, runner
from reliability_studio.slos.models import SLO
from tests.slos.engine_helpers import (
    Dataset,
    dataset_prometheus,
    engine_settings,
    evaluate_at,
    get_slo,
    in_app,
    new_slo,
    parse_time,
    sessionmaker_of,
)
from tests.support.api import create_service, create_slo

FIGURES = (
    "sli_value",
    "error_budget_remaining",
    "budget_consumed",
    "burn_rates",
    "time_to_exhaustion_seconds",
    "good_events",
    "total_events",
    "evaluated_at",
)


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """This module's own Prometheus, which the tests stop and start."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def running(dataset: Dataset) -> Iterator[Dataset]:
    """The module's Prometheus, running at the start and at the end of the test."""
    if not dataset.server.running:
        dataset.server.start()
    yield dataset
    if not dataset.server.running:
        dataset.server.start()


@pytest.fixture
def client(settings: Settings, running: Dataset) -> Iterator[TestClient]:
    """An app on this backend, measuring the module's Prometheus."""
    with TestClient(create_app(engine_settings(settings, running.server.url))) as test_client:
        yield test_client


def figures(slo: dict[str, Any]) -> dict[str, Any]:
    """The engine's figures of an SLO."""
    return {field: slo[field] for field in FIGURES}


def test_prometheus_down_keeps_the_last_figures_and_marks_them_stale(
    client: TestClient, running: Dataset
) -> None:
    slo = new_slo(client, "steady")
    evaluate_at(client, [slo["id"]], running.at)
    measured = get_slo(client, slo["id"])
    assert measured["status"] == "healthy"
    assert measured["stale"] is False

    running.server.stop()
    summary = evaluate_at(client, [slo["id"]], running.at + timedelta(minutes=1))
    assert summary.prometheus_available is False
    assert summary.evaluated == 0

    stale = get_slo(client, slo["id"])
    assert stale["status"] == "unknown"
    assert stale["stale"] is True
    assert "Prometheus unreachable" in stale["evaluation_error"]
    assert running.server.url in stale["evaluation_error"]
    assert figures(stale) == figures(measured)  # evaluated_at included: these are the old ones

    # The API keeps answering: reads, lists by status, and evaluate itself.
    listed = client.get("/api/slos", params={"status": "unknown"})
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [slo["id"]]
    response = client.post(f"/api/slos/{slo['id']}/evaluate")
    assert response.status_code == 200, response.text
    assert response.json()["stale"] is True
    assert response.json()["status"] == "unknown"
    assert client.get(f"/api/slos/{slo['id']}/history").status_code == 200
    assert client.get(f"/api/slos/{slo['id']}/alerts").status_code == 200

    # Back again, on the same data: fresh figures.
    running.server.start()
    assert running.server.query_value('sum(up{job="none"}) or vector(1)') == 1
    later = running.at + timedelta(minutes=2)
    summary = evaluate_at(client, [slo["id"]], running.at)
    assert summary.prometheus_available is True
    fresh = get_slo(client, slo["id"])
    assert fresh["stale"] is False
    assert fresh["evaluation_error"] is None
    assert fresh["status"] == "healthy"
    assert fresh["error_budget_remaining"] == pytest.approx(50, abs=1e-6)
    assert parse_time(fresh["evaluated_at"]) == running.at
    evaluate_at(client, [slo["id"]], later)
    assert parse_time(get_slo(client, slo["id"])["evaluated_at"]) == later


def test_slos_can_be_created_and_changed_while_prometheus_is_down(
    client: TestClient, running: Dataset
) -> None:
    """The write-time check against Prometheus is skipped when it cannot be reached."""
    running.server.stop()
    service_id = str(create_service(client)["id"])
    slo = create_slo(client, service_id, sli={"kind": "bool_gauge", "metric": "probe_success"})
    assert slo["status"] == "unknown"
    response = client.patch(
        f"/api/slos/{slo['id']}",
        json={"sli": {"kind": "bool_gauge", "metric": 'probe_success{job="probe"}'}},
    )
    assert response.status_code == 200, response.text
    response = client.post(f"/api/slos/{slo['id']}/evaluate")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "unknown"
    assert body["stale"] is True
    assert body["evaluated_at"] is None  # never measured

    running.server.start()
    evaluate_at(client, [slo["id"]], running.at)
    assert get_slo(client, slo["id"])["status"] == "at_risk"


def test_a_query_prometheus_refuses_makes_only_its_slo_unknown(
    client: TestClient, running: Dataset
) -> None:
    good = new_slo(client, "steady")
    refused = new_slo(client, "steady")
    # Parses, but fails when run: two series on the right of `/ on()`. The write-time
    # check refuses such an SLI, so it is stored directly, as an older version could have.
    bad_query = (
        'sum(rate(http_requests_total{job="steady"}[{{window}}]))'
        ' / on() rate(http_requests_total{job="steady"}[{{window}}])'
    )
    _store_sli(client, refused["id"], {"kind": "query", "error_ratio_query": bad_query})

    evaluate_at(client, [good["id"], refused["id"]], running.at)
    assert get_slo(client, good["id"])["status"] == "healthy"
    body = get_slo(client, refused["id"])
    assert body["status"] == "unknown"
    assert body["stale"] is False  # Prometheus answered: the figures are not old, there are none
    assert body["evaluation_error"].startswith("Prometheus refused the query: ")
    assert "found duplicate series for the match group" in body["evaluation_error"]
    assert parse_time(body["evaluated_at"]) == running.at


def test_a_stored_sli_that_is_no_longer_valid_makes_only_its_slo_unknown(
    client: TestClient, running: Dataset
) -> None:
    good = new_slo(client, "steady")
    broken = new_slo(client, "steady")
    _store_sli(client, broken["id"], {"kind": "ratio", "total": "rate(x[5m])", "errors": "y"})

    summary = evaluate_at(client, [good["id"], broken["id"]], running.at)
    assert summary.evaluated == 1
    assert get_slo(client, good["id"])["status"] == "healthy"
    body = get_slo(client, broken["id"])
    assert body["status"] == "unknown"
    assert "no longer valid" in body["evaluation_error"]
    response = client.post(f"/api/slos/{broken['id']}/evaluate")
    assert response.status_code == 200, response.text


def test_a_failure_to_store_one_slo_does_not_stop_the_others(
    client: TestClient, running: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = new_slo(client, "steady"), new_slo(client, "spike")
    original = alerting.reconcile_alerts

    async def failing_for_first(session: Any, slo: SLO, *args: Any) -> None:
        if str(slo.id) == first["id"]:
            raise RuntimeError("simulated failure")
        await original(session, slo, *args)

    monkeypatch.setattr(runner, "reconcile_alerts", failing_for_first)
    evaluate_at(client, [first["id"], second["id"]], running.at)
    assert get_slo(client, first["id"])["evaluated_at"] is None  # rolled back
    assert get_slo(client, second["id"])["status"] == "at_risk"


def _store_sli(client: TestClient, slo_id: str, sli: dict[str, Any]) -> None:
    async def store() -> None:
        async with sessionmaker_of(client)() as session:
            await session.execute(update(SLO).where(SLO.id == uuid.UUID(slo_id)).values(sli=sli))
            await session.commit()

    in_app(client, store)
