"""Specification of `PATCH /api/incidents/{id}`: changes, the lifecycle, and their events."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.incidents.helpers import (
    Clock,
    events_of_type,
    parse_time,
    statements_sent,
    timeline_events,
)
from tests.support.api import assert_problem, create_incident, create_service

UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"


def patch(
    client: TestClient, incident_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """PATCH the incident, asserting that it worked."""
    response = client.patch(f"/api/incidents/{incident_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get(client: TestClient, incident_id: str) -> dict[str, Any]:
    response = client.get(f"/api/incidents/{incident_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def walk(client: TestClient, incident_id: str, *statuses: str) -> dict[str, Any]:
    """Move the incident through `statuses`, in order."""
    body: dict[str, Any] = {}
    for status in statuses:
        body = patch(client, incident_id, status=status)
    return body


# --- the seed's update -------------------------------------------------------------------


def test_the_seed_update_sets_status_and_root_cause(client: TestClient) -> None:
    incident = create_incident(client)
    body = patch(
        client,
        incident["id"],
        status="investigating",
        root_cause="Database connection pool exhausted",
    )
    assert body["status"] == "investigating"
    assert body["root_cause"] == "Database connection pool exhausted"
    assert get(client, incident["id"]) == body


def test_the_seed_update_puts_a_status_change_and_a_root_cause_event_on_the_timeline(
    client: TestClient,
) -> None:
    incident = create_incident(client)
    patch(
        client,
        incident["id"],
        status="investigating",
        root_cause="Database connection pool exhausted",
    )
    types = [event["type"] for event in timeline_events(client, incident["id"])]
    assert sorted(types) == ["incident_created", "root_cause_updated", "status_change"]
    [root_cause] = events_of_type(client, incident["id"], "root_cause_updated")
    assert root_cause["description"] == "Database connection pool exhausted"


# --- lifecycle timestamps ----------------------------------------------------------------


def test_leaving_open_acknowledges_and_measures_time_to_acknowledge(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    acknowledged = clock.advance(90)
    body = patch(client, incident["id"], status="investigating")
    assert parse_time(body["acknowledged_at"]) == acknowledged
    assert body["time_to_acknowledge_seconds"] == 90.0
    assert body["resolved_at"] is None
    assert body["time_to_resolve_seconds"] is None


def test_acknowledgement_is_not_moved_by_later_transitions(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    clock.advance(30)
    first = patch(client, incident["id"], status="investigating")
    clock.advance(30)
    later = walk(client, incident["id"], "identified", "monitoring")
    assert later["acknowledged_at"] == first["acknowledged_at"]
    assert later["time_to_acknowledge_seconds"] == 30.0


def test_resolving_records_resolved_at_and_time_to_resolve(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    clock.advance(60)
    patch(client, incident["id"], status="investigating")
    resolved = clock.advance(540)
    body = patch(client, incident["id"], status="resolved")
    assert parse_time(body["resolved_at"]) == resolved
    assert body["time_to_resolve_seconds"] == 600.0
    assert body["time_to_acknowledge_seconds"] == 60.0
    assert body["closed_at"] is None


def test_resolving_straight_from_open_also_acknowledges(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    clock.advance(120)
    body = patch(client, incident["id"], status="resolved")
    assert body["acknowledged_at"] == body["resolved_at"]
    assert body["time_to_acknowledge_seconds"] == 120.0
    assert body["time_to_resolve_seconds"] == 120.0


def test_reopening_a_resolved_incident_clears_its_resolution(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    clock.advance(10)
    resolved = walk(client, incident["id"], "investigating", "resolved")
    clock.advance(10)
    reopened = patch(client, incident["id"], status="investigating")
    assert reopened["status"] == "investigating"
    assert reopened["resolved_at"] is None
    assert reopened["time_to_resolve_seconds"] is None
    assert reopened["acknowledged_at"] == resolved["acknowledged_at"]


def test_resolving_again_after_a_reopen_measures_to_the_new_resolution(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    clock.advance(100)
    walk(client, incident["id"], "resolved", "monitoring")
    clock.advance(200)
    body = patch(client, incident["id"], status="resolved")
    assert body["time_to_resolve_seconds"] == 300.0


def test_closing_a_resolved_incident_keeps_its_resolution_and_records_closed_at(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    clock.advance(100)
    resolved = patch(client, incident["id"], status="resolved")
    closed_time = clock.advance(3600)
    closed = patch(client, incident["id"], status="closed")
    assert closed["status"] == "closed"
    assert parse_time(closed["closed_at"]) == closed_time
    assert closed["resolved_at"] == resolved["resolved_at"]


def test_closing_straight_from_open_counts_as_resolving(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    closed_time = clock.advance(45)
    body = patch(client, incident["id"], status="closed")
    assert parse_time(body["closed_at"]) == closed_time
    assert parse_time(body["resolved_at"]) == closed_time
    assert parse_time(body["acknowledged_at"]) == closed_time


# --- refused transitions -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["open", "investigating", "resolved"])
def test_a_closed_incident_cannot_change_status(client: TestClient, target: str) -> None:
    incident = create_incident(client)
    closed = patch(client, incident["id"], status="closed")
    events_before = timeline_events(client, incident["id"])
    response = client.patch(f"/api/incidents/{incident['id']}", json={"status": target})
    problem = assert_problem(response, 409, "status")
    assert "closed incident is final" in problem["detail"]
    assert get(client, incident["id"]) == closed
    assert timeline_events(client, incident["id"]) == events_before


def test_a_refused_transition_applies_none_of_the_other_changes(client: TestClient) -> None:
    incident = create_incident(client, severity="high")
    closed = patch(client, incident["id"], status="closed")
    events_before = timeline_events(client, incident["id"])
    response = client.patch(
        f"/api/incidents/{incident['id']}",
        json={"status": "investigating", "severity": "low", "root_cause": "late finding"},
    )
    assert_problem(response, 409, "status")
    assert get(client, incident["id"]) == closed
    assert timeline_events(client, incident["id"]) == events_before


@pytest.mark.parametrize("current", ["investigating", "identified", "monitoring", "resolved"])
def test_an_incident_cannot_return_to_open(client: TestClient, current: str) -> None:
    incident = create_incident(client)
    before = patch(client, incident["id"], status=current)
    response = client.patch(f"/api/incidents/{incident['id']}", json={"status": "open"})
    problem = assert_problem(response, 409, "status")
    assert "open" in problem["detail"]
    assert get(client, incident["id"]) == before


def test_setting_the_current_status_again_changes_nothing(client: TestClient) -> None:
    incident = create_incident(client)
    investigating = patch(client, incident["id"], status="investigating")
    again = patch(client, incident["id"], status="investigating")
    assert again == investigating
    assert len(events_of_type(client, incident["id"], "status_change")) == 1


def test_patching_an_open_incident_to_open_is_accepted_and_changes_nothing(
    client: TestClient,
) -> None:
    incident = create_incident(client)
    body = patch(client, incident["id"], status="open")
    assert body == incident
    assert events_of_type(client, incident["id"], "status_change") == []


# --- timeline events of changes ----------------------------------------------------------


def test_a_status_change_is_recorded_with_from_to_and_actor(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    changed_at = clock.advance(5)
    patch(client, incident["id"], status="identified", headers={"X-Actor": "alice"})
    [event] = events_of_type(client, incident["id"], "status_change")
    assert event["metadata"] == {"from": "open", "to": "identified"}
    assert event["actor"] == "alice"
    assert event["source"] == "reliability-studio"
    assert parse_time(event["occurred_at"]) == changed_at


def test_the_actor_of_an_event_defaults_to_api(client: TestClient) -> None:
    incident = create_incident(client)
    patch(client, incident["id"], status="identified")
    [event] = events_of_type(client, incident["id"], "status_change")
    assert event["actor"] == "api"


def test_each_status_change_adds_its_own_event_in_order(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    for status in ("investigating", "identified", "resolved", "monitoring", "closed"):
        clock.advance(1)
        patch(client, incident["id"], status=status)
    transitions = [
        (event["metadata"]["from"], event["metadata"]["to"])
        for event in events_of_type(client, incident["id"], "status_change")
    ]
    assert transitions == [
        ("open", "investigating"),
        ("investigating", "identified"),
        ("identified", "resolved"),
        ("resolved", "monitoring"),
        ("monitoring", "closed"),
    ]


def test_a_severity_change_is_recorded_with_from_to_and_actor(client: TestClient) -> None:
    incident = create_incident(client, severity="low")
    body = patch(client, incident["id"], severity="critical", headers={"X-Actor": "bob"})
    assert body["severity"] == "critical"
    [event] = events_of_type(client, incident["id"], "severity_change")
    assert event["metadata"] == {"from": "low", "to": "critical"}
    assert event["actor"] == "bob"


def test_setting_the_same_severity_records_no_event(client: TestClient) -> None:
    incident = create_incident(client, severity="high")
    patch(client, incident["id"], severity="high")
    assert events_of_type(client, incident["id"], "severity_change") == []


def test_a_root_cause_change_is_recorded(client: TestClient) -> None:
    incident = create_incident(client)
    patch(client, incident["id"], root_cause="Expired TLS certificate", headers={"X-Actor": "c"})
    [event] = events_of_type(client, incident["id"], "root_cause_updated")
    assert event["description"] == "Expired TLS certificate"
    assert event["actor"] == "c"


def test_setting_the_same_root_cause_records_no_event(client: TestClient) -> None:
    incident = create_incident(client, root_cause="Expired TLS certificate")
    patch(client, incident["id"], root_cause="Expired TLS certificate")
    assert events_of_type(client, incident["id"], "root_cause_updated") == []


def test_status_and_severity_changed_together_record_one_event_each(client: TestClient) -> None:
    incident = create_incident(client, severity="critical")
    patch(client, incident["id"], status="monitoring", severity="medium")
    [status_event] = events_of_type(client, incident["id"], "status_change")
    [severity_event] = events_of_type(client, incident["id"], "severity_change")
    assert status_event["metadata"] == {"from": "open", "to": "monitoring"}
    assert severity_event["metadata"] == {"from": "critical", "to": "medium"}


# --- services ----------------------------------------------------------------------------


def test_service_ids_replace_the_linked_services_and_record_the_change(
    client: TestClient,
) -> None:
    payments = create_service(client, name="payments")
    checkout = create_service(client, name="checkout")
    search = create_service(client, name="search")
    incident = create_incident(client, service_ids=[payments["id"], checkout["id"]])
    body = patch(
        client, incident["id"], service_ids=[checkout["id"], search["id"]], headers={"X-Actor": "d"}
    )
    assert body["services"] == [
        {"id": checkout["id"], "name": "checkout"},
        {"id": search["id"], "name": "search"},
    ]
    assert get(client, incident["id"])["services"] == body["services"]
    [event] = events_of_type(client, incident["id"], "services_changed")
    assert event["metadata"] == {"added": ["search"], "removed": ["payments"]}
    assert event["actor"] == "d"


def test_an_empty_service_ids_unlinks_every_service(client: TestClient) -> None:
    service = create_service(client, name="payments")
    incident = create_incident(client, service_ids=[service["id"]])
    body = patch(client, incident["id"], service_ids=[])
    assert body["service_ids"] == []
    assert get(client, incident["id"])["service_ids"] == []
    [event] = events_of_type(client, incident["id"], "services_changed")
    assert event["metadata"] == {"added": [], "removed": ["payments"]}


def test_the_same_set_of_services_in_another_order_records_no_event(client: TestClient) -> None:
    first = create_service(client)
    second = create_service(client)
    incident = create_incident(client, service_ids=[first["id"], second["id"]])
    body = patch(client, incident["id"], service_ids=[second["id"], first["id"], first["id"]])
    assert set(body["service_ids"]) == {first["id"], second["id"]}
    assert events_of_type(client, incident["id"], "services_changed") == []


def test_unlinked_incidents_leave_the_service_incident_list(client: TestClient) -> None:
    service = create_service(client)
    incident = create_incident(client, service_ids=[service["id"]])
    patch(client, incident["id"], service_ids=[])
    listed = client.get("/api/incidents", params={"service_id": service["id"]}).json()
    assert listed["items"] == []


def test_an_unknown_service_id_in_a_patch_changes_nothing(client: TestClient) -> None:
    service = create_service(client)
    incident = create_incident(client, service_ids=[service["id"]])
    events_before = timeline_events(client, incident["id"])
    response = client.patch(
        f"/api/incidents/{incident['id']}",
        json={"status": "investigating", "service_ids": [service["id"], UNKNOWN_ID]},
    )
    assert_problem(response, 422, "service_ids.1")
    assert get(client, incident["id"]) == incident
    assert timeline_events(client, incident["id"]) == events_before


# --- other fields and updated_at ---------------------------------------------------------


def test_title_description_and_commander_can_be_changed(client: TestClient) -> None:
    incident = create_incident(client, description="old")
    body = patch(client, incident["id"], title="Checkout down", description="new", commander="erin")
    assert (body["title"], body["description"], body["commander"]) == (
        "Checkout down",
        "new",
        "erin",
    )
    assert get(client, incident["id"]) == body


@pytest.mark.parametrize("field", ["description", "root_cause", "commander"])
def test_null_clears_an_optional_field(client: TestClient, field: str) -> None:
    incident = create_incident(client, **{field: "something"})
    body = patch(client, incident["id"], **{field: None})
    assert body[field] is None
    assert get(client, incident["id"])[field] is None


def test_a_change_moves_updated_at_to_the_time_of_the_change(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    changed_at = clock.advance(42)
    body = patch(client, incident["id"], title="Renamed")
    assert parse_time(body["updated_at"]) == changed_at
    assert body["created_at"] == incident["created_at"]


def test_a_change_of_linked_services_alone_moves_updated_at(
    client: TestClient, clock: Clock
) -> None:
    service = create_service(client)
    incident = create_incident(client)
    changed_at = clock.advance(7)
    body = patch(client, incident["id"], service_ids=[service["id"]])
    assert parse_time(body["updated_at"]) == changed_at


def test_a_patch_that_changes_nothing_leaves_updated_at_and_the_timeline_alone(
    client: TestClient, clock: Clock
) -> None:
    service = create_service(client)
    incident = create_incident(
        client, title="Same", severity="low", root_cause="rc", service_ids=[service["id"]]
    )
    events_before = timeline_events(client, incident["id"])
    clock.advance(60)
    body = patch(
        client,
        incident["id"],
        title="Same",
        severity="low",
        status="open",
        root_cause="rc",
        service_ids=[service["id"]],
    )
    assert body == incident
    assert timeline_events(client, incident["id"]) == events_before


def test_an_empty_patch_changes_nothing(client: TestClient) -> None:
    incident = create_incident(client)
    assert patch(client, incident["id"]) == incident


# --- invalid updates ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "status", "severity", "service_ids"])
def test_null_for_a_required_field_is_refused_naming_it(client: TestClient, field: str) -> None:
    incident = create_incident(client)
    response = client.patch(f"/api/incidents/{incident['id']}", json={field: None})
    assert_problem(response, 422, field)
    assert get(client, incident["id"]) == incident


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"status": "done"}, "status", id="unknown status"),
        pytest.param({"severity": "sev2"}, "severity", id="unknown severity"),
        pytest.param({"title": " "}, "title", id="blank title"),
        pytest.param({"title": "a\x00b"}, "title", id="NUL in title"),
        pytest.param({"root_cause": "a\x00b"}, "root_cause", id="NUL in root cause"),
        pytest.param({"service_ids": ["x"]}, "service_ids.0", id="service id not a uuid"),
        pytest.param({"acknowledged_at": None}, "acknowledged_at", id="read-only field"),
        pytest.param({"id": UNKNOWN_ID}, "id", id="id"),
    ],
)
def test_an_invalid_patch_is_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    incident = create_incident(client)
    response = client.patch(f"/api/incidents/{incident['id']}", json=body)
    assert_problem(response, 422, field)
    assert get(client, incident["id"]) == incident


def test_patching_an_unknown_incident_is_404(client: TestClient) -> None:
    response = client.patch(f"/api/incidents/{UNKNOWN_ID}", json={"status": "investigating"})
    assert_problem(response, 404)


def test_a_change_without_if_match_reads_the_incident_and_its_services_in_one_statement(
    client: TestClient,
) -> None:
    # With no If-Match to check first, the service's own locking read is the only one.
    service = create_service(client, name="checkout")
    incident = create_incident(client, service_ids=[service["id"]])
    with statements_sent(client) as sent:
        body = patch(client, incident["id"], commander="ana")

    assert body["services"] == [{"id": service["id"], "name": "checkout"}]
    reads = [s for s in sent if s.startswith("SELECT") and "FROM incidents" in s]
    assert len(reads) == 1
    assert not [s for s in sent if s.startswith("SELECT") and "FROM incident_services" in s]
