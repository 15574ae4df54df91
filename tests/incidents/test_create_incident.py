"""Specification of `POST /api/incidents` and `GET /api/incidents/{id}`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.analysis.models import AnalysisRun
from reliability_studio.db.models import Incident, IncidentService, TimelineEvent
from tests.incidents.helpers import (
    Clock,
    count_rows,
    events_of_type,
    parse_time,
    rows_of,
    statements_sent,
)
from tests.support.api import assert_problem, create_incident, create_service

UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"
WRITTEN_AT_CREATION = ("incidents", "incident_services", "timeline_events", "analysis_runs")


def test_creating_an_incident_with_the_seed_body_answers_201_with_location(
    client: TestClient,
) -> None:
    service = create_service(client, name="payment-service")
    response = client.post(
        "/api/incidents",
        json={
            "title": "Payment Service Down",
            "description": "500 errors on /api/payments",
            "severity": "critical",
            "service_ids": [service["id"]],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/incidents/{body['id']}"
    assert body["title"] == "Payment Service Down"
    assert body["description"] == "500 errors on /api/payments"
    assert body["severity"] == "critical"
    assert body["status"] == "open"
    assert body["root_cause"] is None


def test_a_new_incident_is_open_and_not_yet_acknowledged(client: TestClient) -> None:
    body = create_incident(client)
    assert body["status"] == "open"
    assert body["acknowledged_at"] is None
    assert body["resolved_at"] is None
    assert body["closed_at"] is None
    assert body["time_to_acknowledge_seconds"] is None
    assert body["time_to_resolve_seconds"] is None
    assert body["created_at"] == body["updated_at"]


def test_a_new_incident_links_its_services_by_id_and_name(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    checkout = create_service(client, name="checkout")
    body = create_incident(client, service_ids=[payments["id"], checkout["id"]])
    assert set(body["service_ids"]) == {payments["id"], checkout["id"]}
    assert body["services"] == [
        {"id": checkout["id"], "name": "checkout"},
        {"id": payments["id"], "name": "payments"},
    ]
    assert body["service_ids"] == [s["id"] for s in body["services"]]


def test_the_location_of_a_new_incident_answers_the_same_incident(client: TestClient) -> None:
    service = create_service(client)
    created = client.post(
        "/api/incidents", json={"title": "Checkout slow", "service_ids": [service["id"]]}
    )
    assert created.status_code == 201
    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


def test_creating_an_incident_records_an_incident_created_event(
    client: TestClient, clock: Clock
) -> None:
    service = create_service(client)
    body = create_incident(client, severity="high", service_ids=[service["id"]])
    [event] = events_of_type(client, body["id"], "incident_created")
    assert event["incident_id"] == body["id"]
    assert event["metadata"] == {"severity": "high", "service_ids": [service["id"]]}
    assert event["actor"] == "api"
    assert event["source"] == "reliability-studio"
    assert parse_time(event["occurred_at"]) == clock.now == parse_time(body["created_at"])


def test_the_x_actor_header_is_recorded_as_the_actor_of_the_created_event(
    client: TestClient,
) -> None:
    response = client.post(
        "/api/incidents", json={"title": "Queue backlog"}, headers={"X-Actor": "alice"}
    )
    assert response.status_code == 201
    [event] = events_of_type(client, response.json()["id"], "incident_created")
    assert event["actor"] == "alice"


def test_a_blank_x_actor_header_counts_as_the_default_actor(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", json={"title": "Queue backlog"}, headers={"X-Actor": "   "}
    )
    assert response.status_code == 201
    [event] = events_of_type(client, response.json()["id"], "incident_created")
    assert event["actor"] == "api"


def test_an_x_actor_header_over_200_characters_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", json={"title": "Queue backlog"}, headers={"X-Actor": "a" * 201}
    )
    assert_problem(response, 422, "x-actor")
    assert count_rows(client, Incident) == 0


def test_severity_defaults_to_medium(client: TestClient) -> None:
    response = client.post("/api/incidents", json={"title": "Disk filling up"})
    assert response.status_code == 201
    assert response.json()["severity"] == "medium"


def test_an_incident_may_have_no_services(client: TestClient) -> None:
    body = create_incident(client)
    assert body["service_ids"] == []
    assert body["services"] == []


def test_the_title_is_trimmed(client: TestClient) -> None:
    body = create_incident(client, title="  Payment Service Down \n")
    assert body["title"] == "Payment Service Down"


def test_root_cause_and_commander_may_be_given_at_creation(client: TestClient) -> None:
    body = create_incident(client, root_cause="Bad deploy", commander="bob")
    assert body["root_cause"] == "Bad deploy"
    assert body["commander"] == "bob"


def test_an_unknown_service_id_is_refused_naming_its_position_and_nothing_is_created(
    client: TestClient,
) -> None:
    known = create_service(client)
    response = client.post(
        "/api/incidents",
        json={"title": "Payment Service Down", "service_ids": [known["id"], UNKNOWN_ID]},
    )
    problem = assert_problem(response, 422, "service_ids.1")
    assert UNKNOWN_ID in problem["detail"]
    assert client.get("/api/incidents").json() == {"items": [], "next_cursor": None}
    assert count_rows(client, Incident) == 0
    assert count_rows(client, IncidentService) == 0
    assert count_rows(client, TimelineEvent) == 0
    assert count_rows(client, AnalysisRun) == 0


def test_a_service_id_given_twice_is_linked_once(client: TestClient) -> None:
    service = create_service(client)
    body = create_incident(client, service_ids=[service["id"], service["id"]])
    assert body["service_ids"] == [service["id"]]
    assert client.get(f"/api/incidents/{body['id']}").json()["service_ids"] == [service["id"]]
    assert count_rows(client, IncidentService) == 1


INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("missing title", {"severity": "high"}, "title"),
    ("blank title", {"title": "   "}, "title"),
    ("null title", {"title": None}, "title"),
    ("title too long", {"title": "x" * 501}, "title"),
    ("NUL in title", {"title": "Payment\x00Down"}, "title"),
    ("NUL in description", {"title": "t", "description": "a\x00b"}, "description"),
    ("unknown severity", {"title": "t", "severity": "sev1"}, "severity"),
    ("upper-case severity", {"title": "t", "severity": "CRITICAL"}, "severity"),
    ("service id not a uuid", {"title": "t", "service_ids": ["payments"]}, "service_ids.0"),
    ("service_ids not a list", {"title": "t", "service_ids": UNKNOWN_ID}, "service_ids"),
    (
        "over 100 services",
        {"title": "t", "service_ids": [str(uuid.uuid4()) for _ in range(101)]},
        "service_ids",
    ),
    ("extra field", {"title": "t", "priority": "p1"}, "priority"),
    ("status cannot be chosen", {"title": "t", "status": "resolved"}, "status"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param(body, field, id=name) for name, body, field in INVALID_BODIES],
)
def test_an_invalid_body_is_refused_with_422_naming_the_field_and_nothing_is_created(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    assert_problem(client.post("/api/incidents", json=body), 422, field)
    assert count_rows(client, Incident) == 0
    assert count_rows(client, TimelineEvent) == 0


def test_a_body_that_is_not_json_is_refused_with_415(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", content=b"title=Down", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415)
    assert count_rows(client, Incident) == 0


def test_malformed_json_is_refused_with_400(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", content=b'{"title": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)
    assert count_rows(client, Incident) == 0


def test_get_answers_the_incident_with_its_services(client: TestClient) -> None:
    service = create_service(client, name="payments")
    created = create_incident(client, description="500s", service_ids=[service["id"]])
    response = client.get(f"/api/incidents/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["description"] == "500s"
    assert body["services"] == [{"id": service["id"], "name": "payments"}]


def test_get_answers_several_services_by_name_and_the_incident_as_a_list_shows_it(
    client: TestClient,
) -> None:
    names = ["search", "api", "payments"]
    services = {name: create_service(client, name=name)["id"] for name in names}
    created = create_incident(client, service_ids=list(services.values()))
    body = client.get(f"/api/incidents/{created['id']}").json()
    assert body["services"] == [{"id": services[name], "name": name} for name in sorted(names)]
    assert body["service_ids"] == [services[name] for name in sorted(names)]
    assert client.get("/api/incidents").json()["items"] == [body]


def test_get_answers_an_incident_without_services_with_empty_lists(client: TestClient) -> None:
    created = create_incident(client)
    body = client.get(f"/api/incidents/{created['id']}").json()
    assert (body["services"], body["service_ids"]) == ([], [])


def test_get_of_an_unknown_incident_is_404(client: TestClient) -> None:
    problem = assert_problem(client.get(f"/api/incidents/{UNKNOWN_ID}"), 404)
    assert UNKNOWN_ID in problem["detail"]


def test_get_with_an_id_that_is_not_a_uuid_is_422_naming_the_path_parameter(
    client: TestClient,
) -> None:
    assert_problem(client.get("/api/incidents/not-a-uuid"), 422, "incident_id")


def test_a_new_incident_queues_a_pending_evidence_run_requested_by_its_actor(
    client: TestClient,
) -> None:
    response = client.post(
        "/api/incidents", json={"title": "Checkout down"}, headers={"X-Actor": "ana"}
    )
    assert response.status_code == 201, response.text
    incident = response.json()
    [run] = rows_of(client, AnalysisRun)
    assert str(run.incident_id) == incident["id"]
    assert (run.status, run.requested_by) == ("pending", "ana")
    assert run.attempts == 0
    assert timedelta(0) <= run.due_at - parse_time(incident["created_at"]) < timedelta(seconds=5)


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_on_postgresql_the_incident_its_links_event_and_run_are_one_statement(
    client: TestClient,
) -> None:
    first, second = create_service(client), create_service(client)
    with statements_sent(client) as sent:
        incident = create_incident(client, service_ids=[first["id"], second["id"]])

    assert len(incident["services"]) == 2
    writes = [s for s in sent if "INSERT INTO" in s and "audit_entries" not in s]
    assert len(writes) == 1
    assert all(f"INSERT INTO {table}" in writes[0] for table in WRITTEN_AT_CREATION)
    assert not [s for s in sent if s.startswith("SELECT services.")]
