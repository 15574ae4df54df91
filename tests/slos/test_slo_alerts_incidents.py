"""Burn-rate alerts from the engine, against a real Prometheus: the spike pages and opens one
incident (or joins the service's open one), the latency SLO only tickets, and alerts resolve
when the burn stops, saying so on the incident's timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.slos.engine_helpers import (
    BURN_WINDOW_NAMES,
    Dataset,
    alerts,
    dataset_prometheus,
    engine_settings,
    evaluate_at,
    get_slo,
    incidents,
    new_slo,
    parse_time,
    sli_for,
    timeline,
)
from tests.support.api import create_incident, create_service
from tests.support.slo_dataset import EXPECTED, Job


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def client(settings: Settings, dataset: Dataset) -> Iterator[TestClient]:
    """An app on this backend, measuring the dataset's Prometheus."""
    with TestClient(create_app(engine_settings(settings, dataset.server.url))) as test_client:
        yield test_client


def spike_slo(client: TestClient, service_id: str | None = None) -> dict[str, Any]:
    """An SLO on the spike, on a service named so that titles can be checked."""
    if service_id is None:
        service_id = str(create_service(client, name="checkout")["id"])
    return new_slo(client, "spike", service_id, name="availability")


def burn_events(client: TestClient, incident_id: str) -> list[dict[str, Any]]:
    """The incident's `slo_burn_rate` events."""
    return timeline(client, incident_id, "slo_burn_rate")


# --- the spike pages ------------------------------------------------------------------------


def test_the_spike_opens_exactly_one_critical_incident_on_its_service(
    client: TestClient, dataset: Dataset
) -> None:
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)

    [incident] = incidents(client)
    assert incident["status"] == "open"
    assert incident["severity"] == "critical"
    assert [service["id"] for service in incident["services"]] == [slo["service_id"]]
    assert incident["title"] == "SLO burn rate: availability (checkout)"
    assert "100.0x" in incident["description"]

    page = [e for e in burn_events(client, incident["id"]) if e["metadata"]["severity"] == "page"]
    assert len(page) == 1
    event = page[0]
    assert event["source"] == "slo-engine"
    assert event["actor"] == "slo-engine"
    assert parse_time(event["occurred_at"]) == dataset.at
    assert event["title"].startswith("Page: SLO 'availability' is burning")
    metadata = event["metadata"]
    assert metadata["slo_id"] == slo["id"]
    assert metadata["rule"] == "page_1h_5m"
    assert metadata["factor"] == pytest.approx(14.4)
    assert metadata["objective"] == 99.9
    assert metadata["burn_rates"]["1h"] == pytest.approx(100, abs=1e-6)
    assert metadata["burn_rates"]["5m"] == pytest.approx(100, abs=1e-6)
    assert set(metadata["burn_rates"]) == set(BURN_WINDOW_NAMES)
    assert metadata["error_budget_remaining"] == pytest.approx(22.361111, abs=1e-6)
    assert metadata["sli_value"] == pytest.approx(100 * (1 - 559 / 720_000), abs=1e-6)
    # The PromQL an on-call engineer can paste into Prometheus to check the figure.
    assert set(metadata["promql"]) == {"1h", "5m"}
    for window, promql in metadata["promql"].items():
        assert f"[{window}]" in promql
        assert 'http_requests_total{job="spike",code=~"5.."}' in promql
        ratio = dataset.server.query_value(promql, dataset.now)
        assert ratio == pytest.approx(0.1, rel=1e-9)


def test_the_page_alert_and_the_ticket_are_listed_and_linked_to_the_incident(
    client: TestClient, dataset: Dataset
) -> None:
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)
    [incident] = incidents(client)

    listed = alerts(client, slo["id"])
    assert {alert["severity"] for alert in listed} == {"page", "ticket"}
    by_severity = {alert["severity"]: alert for alert in listed}
    page, ticket = by_severity["page"], by_severity["ticket"]
    assert page["rule"] == "page_1h_5m"
    assert page["factor"] == pytest.approx(14.4)
    assert ticket["rule"] == "ticket_1d_2h"
    assert ticket["factor"] == pytest.approx(3)
    for alert in (page, ticket):
        assert alert["slo_id"] == slo["id"]
        assert alert["resolved_at"] is None
        assert parse_time(alert["started_at"]) == dataset.at
        assert alert["incident_id"] == incident["id"]
        assert alert["burn_rates"]["1h"] == pytest.approx(100, abs=1e-6)
    assert alerts(client, slo["id"], active=True) == listed
    assert alerts(client, slo["id"], active=False) == []
    # The ticket is noted on the incident the page opened.
    severities = [event["metadata"]["severity"] for event in burn_events(client, incident["id"])]
    assert sorted(severities) == ["page", "ticket"]


def test_evaluating_again_opens_no_second_incident(client: TestClient, dataset: Dataset) -> None:
    slo = spike_slo(client)
    for seconds in (0, 0, 30, 60):
        evaluate_at(client, [slo["id"]], dataset.at + timedelta(seconds=seconds))
    [incident] = incidents(client)
    assert len(burn_events(client, incident["id"])) == 2  # the page and the ticket, once
    assert len(alerts(client, slo["id"])) == 2
    assert get_slo(client, slo["id"])["status"] == "at_risk"


def test_two_slos_of_one_service_share_its_incident(client: TestClient, dataset: Dataset) -> None:
    service_id = str(create_service(client)["id"])
    first = new_slo(client, "spike", service_id)
    second = new_slo(client, "spike", service_id)
    evaluate_at(client, [first["id"], second["id"]], dataset.at)
    [incident] = incidents(client)
    events = burn_events(client, incident["id"])
    assert {event["metadata"]["slo_id"] for event in events} == {first["id"], second["id"]}


def test_the_page_joins_the_service_s_open_incident(client: TestClient, dataset: Dataset) -> None:
    service_id = str(create_service(client)["id"])
    existing = create_incident(client, severity="high", service_ids=[service_id])
    slo = spike_slo(client, service_id)
    evaluate_at(client, [slo["id"]], dataset.at)

    [incident] = incidents(client)
    assert incident["id"] == existing["id"]
    assert incident["severity"] == "high"  # the engine adds to it, it does not take it over
    assert {event["metadata"]["severity"] for event in burn_events(client, existing["id"])} == {
        "page",
        "ticket",
    }
    assert {alert["incident_id"] for alert in alerts(client, slo["id"])} == {existing["id"]}


def test_a_resolved_incident_is_not_joined(client: TestClient, dataset: Dataset) -> None:
    service_id = str(create_service(client)["id"])
    old = create_incident(client, service_ids=[service_id])
    response = client.patch(f"/api/incidents/{old['id']}", json={"status": "resolved"})
    assert response.status_code == 200, response.text
    slo = spike_slo(client, service_id)
    evaluate_at(client, [slo["id"]], dataset.at)
    opened = [incident for incident in incidents(client) if incident["id"] != old["id"]]
    assert len(opened) == 1
    assert opened[0]["status"] == "open"
    assert burn_events(client, old["id"]) == []


# --- alerts resolve -------------------------------------------------------------------------


def test_the_alert_resolves_when_the_sli_is_pointed_at_healthy_traffic(
    client: TestClient, dataset: Dataset
) -> None:
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)
    [incident] = incidents(client)

    response = client.patch(f"/api/slos/{slo['id']}", json={"sli": sli_for("steady")})
    assert response.status_code == 200, response.text
    cleared_at = dataset.at + timedelta(seconds=1)
    evaluate_at(client, [slo["id"]], cleared_at)

    assert get_slo(client, slo["id"])["status"] == "healthy"
    assert alerts(client, slo["id"], active=True) == []
    resolved = alerts(client, slo["id"], active=False)
    assert {alert["severity"] for alert in resolved} == {"page", "ticket"}
    assert all(parse_time(alert["resolved_at"]) == cleared_at for alert in resolved)

    events = timeline(client, incident["id"], "slo_burn_rate_resolved")
    assert {event["metadata"]["severity"] for event in events} == {"page", "ticket"}
    for event in events:
        assert event["metadata"]["slo_id"] == slo["id"]
        assert event["metadata"]["burn_rates"]["1h"] == pytest.approx(0.5, abs=1e-6)
        assert parse_time(event["occurred_at"]) == cleared_at
        assert "has cleared" in event["title"]
    # The engine reports; people resolve incidents.
    assert incidents(client)[0]["status"] == "open"


def test_the_alert_resolves_when_evaluated_before_the_spike(
    client: TestClient, dataset: Dataset
) -> None:
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)
    evaluate_at(client, [slo["id"]], dataset.at - timedelta(hours=3))
    assert alerts(client, slo["id"], active=True) == []
    [incident] = incidents(client)
    assert len(timeline(client, incident["id"], "slo_burn_rate_resolved")) == 2
    # A burn that starts again is a new alert, on the same (still open) incident.
    evaluate_at(client, [slo["id"]], dataset.at)
    assert len(alerts(client, slo["id"], active=True)) == 2
    assert len(alerts(client, slo["id"])) == 4
    assert len(incidents(client)) == 1
    assert len(burn_events(client, incident["id"])) == 4


def test_making_the_slo_manual_closes_its_alerts(client: TestClient, dataset: Dataset) -> None:
    """Nothing measures a manual SLO, so nothing else would ever clear its alerts."""
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)
    [incident] = incidents(client)
    response = client.patch(f"/api/slos/{slo['id']}", json={"sli": None})
    assert response.status_code == 200, response.text
    assert alerts(client, slo["id"], active=True) == []
    events = timeline(client, incident["id"], "slo_burn_rate_resolved")
    assert {event["metadata"]["reason"] for event in events} == {"sli_removed"}
    assert len(events) == 2


# --- tickets do not page --------------------------------------------------------------------


def test_the_latency_slo_tickets_without_opening_an_incident(
    client: TestClient, dataset: Dataset
) -> None:
    expected = EXPECTED["latency"]
    assert expected.tickets
    assert not expected.pages
    slo = new_slo(client, "latency")
    evaluate_at(client, [slo["id"]], dataset.at)

    assert incidents(client) == []
    [ticket] = alerts(client, slo["id"], active=True)
    assert ticket["severity"] == "ticket"
    assert ticket["rule"] == "ticket_3d_6h"  # burn 2: above 1 (3d & 6h), not above 3 (1d & 2h)
    assert ticket["factor"] == pytest.approx(1)
    assert ticket["incident_id"] is None
    assert get_slo(client, slo["id"])["status"] == "breached"


def test_a_ticket_is_noted_on_the_service_s_open_incident(
    client: TestClient, dataset: Dataset
) -> None:
    service_id = str(create_service(client)["id"])
    existing = create_incident(client, service_ids=[service_id])
    slo = new_slo(client, "latency", service_id)
    evaluate_at(client, [slo["id"]], dataset.at)

    assert [incident["id"] for incident in incidents(client)] == [existing["id"]]
    [event] = burn_events(client, existing["id"])
    assert event["title"].startswith("Ticket: ")
    assert event["metadata"]["rule"] == "ticket_3d_6h"
    assert set(event["metadata"]["promql"]) == {"3d", "6h"}
    [ticket] = alerts(client, slo["id"])
    assert ticket["incident_id"] == existing["id"]


@pytest.mark.parametrize("job", ["steady", "reset", "probe", "nodata"])
def test_quiet_slos_raise_no_alert(client: TestClient, dataset: Dataset, job: Job) -> None:
    slo = new_slo(client, job)
    evaluate_at(client, [slo["id"]], dataset.at)
    assert alerts(client, slo["id"]) == []
    assert incidents(client) == []


def test_alerts_of_an_unknown_slo_are_404(client: TestClient) -> None:
    response = client.get("/api/slos/00000000-0000-0000-0000-000000000000/alerts")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_page_notifies_the_channels_subscribed_to_burn_rates(
    client: TestClient, dataset: Dataset
) -> None:
    channel = client.post(
        "/api/notification-channels",
        json={"name": "burns", "config": {"kind": "webhook", "url": "https://hooks.example/b"}},
    ).json()
    policy = client.post(
        "/api/notification-policies",
        json={"name": "burns", "events": ["slo.burn_rate"], "channel_ids": [channel["id"]]},
    )
    assert policy.status_code == 201, policy.text
    slo = spike_slo(client)
    evaluate_at(client, [slo["id"]], dataset.at)

    [incident] = incidents(client)
    rows = client.get("/api/notifications").json()["items"]
    assert [(row["event"], row["incident_id"]) for row in rows] == [
        ("slo.burn_rate", incident["id"])
    ]
    assert rows[0]["status"] == "pending"  # written with the alert; no dispatcher here
