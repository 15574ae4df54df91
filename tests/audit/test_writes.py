"""Specification of what the audit log records for each kind of write made through the API,
on each backend: who (`X-Actor`), in which request (`X-Request-ID`), what, and the values
before and after."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.audit.redact import REDACTED
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.audit.helpers import as_actor, audit_entries, only_entry

SERVICES = "/api/services"
INCIDENTS = "/api/incidents"
CHANNELS = "/api/notification-channels"
POLICIES = "/api/notification-policies"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5"


def post(client: TestClient, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the kinds of resources, each made by a POST whose headers the test chooses --------------


@dataclass(frozen=True)
class Kind:
    """A kind of resource: how to make one, where it lives, and a PATCH of one field."""

    resource_type: str
    create: Callable[[TestClient, dict[str, str]], dict[str, Any]]
    path: Callable[[dict[str, Any]], str]
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return self.resource_type


def _service(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return post(client, SERVICES, {"name": unique("svc"), "team": "payments"}, **headers)


def _incident(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    body = {"title": "Checkout errors", "severity": "high"}
    return post(client, INCIDENTS, body, **headers)


def _task(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    incident = _incident(client, {})
    return post(client, f"{INCIDENTS}/{incident['id']}/tasks", {"title": "Roll back"}, **headers)


def _slo(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    service = _service(client, {})
    body = {
        "service_id": service["id"],
        "name": unique("slo"),
        "objective": 99.9,
        "window_days": 30,
        "description": "Checkout availability",
    }
    return post(client, "/api/slos", body, **headers)


def _rule(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return post(
        client, "/api/correlation-rules", {"name": unique("rule"), "threshold": 1}, **headers
    )


def _channel(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    config = {"kind": "webhook", "url": "https://hooks.example/rs", "secret": WEBHOOK_SECRET}
    return post(client, CHANNELS, {"name": "ops", "config": config}, **headers)


def _policy(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    channel = _channel(client, {})
    body = {"name": "pages", "events": ["incident.created"], "channel_ids": [channel["id"]]}
    return post(client, POLICIES, body, **headers)


SERVICE = Kind("service", _service, lambda r: f"{SERVICES}/{r['id']}", "team", "payments", "core")
INCIDENT = Kind(
    "incident",
    _incident,
    lambda r: f"{INCIDENTS}/{r['id']}",
    "title",
    "Checkout errors",
    "Checkout errors in eu-west-1",
)
TASK = Kind(
    "task",
    _task,
    lambda r: f"{INCIDENTS}/{r['incident_id']}/tasks/{r['id']}",
    "title",
    "Roll back",
    "Roll back v2.3",
)
SLO = Kind(
    "slo",
    _slo,
    lambda r: f"/api/slos/{r['id']}",
    "description",
    "Checkout availability",
    "Checkout availability, EU",
)
RULE = Kind(
    "correlation_rule", _rule, lambda r: f"/api/correlation-rules/{r['id']}", "threshold", 1, 5
)
CHANNEL = Kind(
    "notification_channel", _channel, lambda r: f"{CHANNELS}/{r['id']}", "name", "ops", "ops-eu"
)
POLICY = Kind(
    "notification_policy", _policy, lambda r: f"{POLICIES}/{r['id']}", "name", "pages", "pages-eu"
)
WRITABLE = [SERVICE, INCIDENT, TASK, SLO, RULE, CHANNEL, POLICY]
DELETABLE = [SERVICE, TASK, SLO, RULE, CHANNEL, POLICY]  # incidents are never deleted


def entry_of(
    client: TestClient, kind: Kind, resource: dict[str, Any], action: str
) -> dict[str, Any]:
    return only_entry(
        client,
        resource_type=kind.resource_type,
        resource_id=resource["id"],
        action=f"{kind.resource_type}.{action}",
    )


# --- every kind: created, updated, deleted --------------------------------------------------


@pytest.mark.parametrize("kind", WRITABLE, ids=str)
def test_a_creation_is_recorded_with_its_actor_request_and_whole_row(
    client: TestClient, kind: Kind
) -> None:
    resource = kind.create(client, as_actor("alice", f"req-create-{kind}"))

    entry = entry_of(client, kind, resource, "created")
    assert entry["actor_name"] == "alice"
    assert entry["request_id"] == f"req-create-{kind}"
    assert entry["organization_id"] == str(DEFAULT_ORGANIZATION_ID)
    assert entry["before"] is None
    assert entry["after"]["id"] == resource["id"]
    assert entry["after"][kind.field] == kind.old


@pytest.mark.parametrize("kind", WRITABLE, ids=str)
def test_an_update_records_exactly_the_changed_fields_before_and_after(
    client: TestClient, kind: Kind
) -> None:
    resource = kind.create(client, {})
    response = client.patch(
        kind.path(resource),
        json={kind.field: kind.new},
        headers=as_actor("bob", f"req-update-{kind}"),
    )
    assert response.status_code == 200, response.text

    entry = entry_of(client, kind, resource, "updated")
    assert (entry["actor_name"], entry["request_id"]) == ("bob", f"req-update-{kind}")
    assert entry["before"] == {kind.field: kind.old}
    assert entry["after"] == {kind.field: kind.new}


@pytest.mark.parametrize("kind", DELETABLE, ids=str)
def test_a_deletion_is_recorded_with_the_whole_row_as_it_was(
    client: TestClient, kind: Kind
) -> None:
    resource = kind.create(client, {})
    response = client.delete(kind.path(resource), headers=as_actor("carol", f"req-del-{kind}"))
    assert response.status_code == 204, response.text

    entry = entry_of(client, kind, resource, "deleted")
    assert (entry["actor_name"], entry["request_id"]) == ("carol", f"req-del-{kind}")
    assert entry["before"]["id"] == resource["id"]
    assert entry["before"][kind.field] == kind.old
    assert entry["after"] is None


def test_an_update_that_changes_nothing_records_nothing(client: TestClient) -> None:
    service = _service(client, {})
    response = client.patch(f"{SERVICES}/{service['id']}", json={"team": "payments"})
    assert response.status_code == 200, response.text

    assert audit_entries(client, action="service.updated") == []


def test_values_are_stored_as_json_ids_and_times_as_strings(client: TestClient) -> None:
    service = _service(client, {})

    after = only_entry(client, action="service.created")["after"]
    assert after["organization_id"] == str(DEFAULT_ORGANIZATION_ID)
    assert after["id"] == service["id"]
    assert after["created_at"].endswith("Z")  # RFC 3339 in UTC, as the API writes times
    assert datetime.fromisoformat(after["created_at"]) == datetime.fromisoformat(
        service["created_at"]
    )


def test_an_entry_names_its_time_and_the_actor_is_api_without_x_actor(
    client: TestClient,
) -> None:
    _service(client, {})

    entry = only_entry(client, action="service.created")
    assert entry["actor_name"] == "api"
    assert datetime.fromisoformat(entry["occurred_at"]).utcoffset() is not None


# --- incidents: several rows in one request ---------------------------------------------------


def test_opening_an_incident_records_it_its_service_links_and_its_first_event_in_one_request(
    client: TestClient,
) -> None:
    service = _service(client, {})
    body = {"title": "Checkout down", "severity": "critical", "service_ids": [service["id"]]}
    incident = post(client, INCIDENTS, body, **as_actor("alice", "req-open"))

    entries = audit_entries(client, request_id="req-open")
    assert Counter(e["action"] for e in entries) == {
        "incident.created": 1,
        "incident_service.created": 1,
        "timeline_event.created": 1,
    }
    link = next(e for e in entries if e["resource_type"] == "incident_service")
    assert link["resource_id"] == f"{incident['id']}:{service['id']}"
    event = next(e for e in entries if e["resource_type"] == "timeline_event")
    assert (event["after"]["type"], event["after"]["incident_id"]) == (
        "incident_created",
        incident["id"],
    )


def test_opening_an_incident_records_the_whole_rows_of_it_its_link_and_its_event(
    client: TestClient,
) -> None:
    # PostgreSQL writes them in one statement, SQLite through the ORM: the same entries.
    service = _service(client, {})
    body = {"title": "Checkout down", "severity": "high", "service_ids": [service["id"]]}
    incident = post(client, INCIDENTS, body, **as_actor("alice", "req-whole"))

    after = {e["resource_type"]: e["after"] for e in audit_entries(client, request_id="req-whole")}
    assert after["incident"] == {
        "id": incident["id"],
        "organization_id": incident["organization_id"],
        "title": "Checkout down",
        "description": None,
        "severity": "high",
        "status": "open",
        "root_cause": None,
        "commander": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "closed_at": None,
        "created_at": after["incident"]["created_at"],
        "updated_at": after["incident"]["created_at"],
        "version": 1,
    }
    assert after["incident_service"] == {
        "incident_id": incident["id"],
        "service_id": service["id"],
        "organization_id": incident["organization_id"],
        "created_at": after["incident_service"]["created_at"],
    }
    assert set(after["timeline_event"]) == {
        "id", "organization_id", "incident_id", "type", "source", "title", "description",
        "occurred_at", "metadata", "actor", "created_at",
    }  # fmt: skip
    assert after["timeline_event"]["metadata"] == {
        "severity": "high",
        "service_ids": [service["id"]],
    }


def test_an_incident_update_flushed_in_several_steps_is_one_entry_with_every_changed_field(
    client: TestClient,
) -> None:
    first, second = _service(client, {}), _service(client, {})
    body = {"title": "Checkout down", "severity": "high", "service_ids": [first["id"]]}
    incident = post(client, INCIDENTS, body, **as_actor("alice", "req-open"))
    # Severity is flushed before the services are looked up; the title after.
    change = {"severity": "critical", "service_ids": [second["id"]], "title": "Checkout is down"}
    response = client.patch(
        f"{INCIDENTS}/{incident['id']}", json=change, headers=as_actor("bob", "req-relink")
    )
    assert response.status_code == 200, response.text

    updated = only_entry(client, request_id="req-relink", action="incident.updated")
    assert updated["before"] == {"severity": "high", "title": "Checkout down"}
    assert updated["after"] == {"severity": "critical", "title": "Checkout is down"}


def test_services_unlinked_from_an_incident_are_recorded_as_deleted_links(
    client: TestClient,
) -> None:
    first, second = _service(client, {}), _service(client, {})
    body = {"title": "Checkout down", "severity": "high", "service_ids": [first["id"]]}
    incident = post(client, INCIDENTS, body)
    response = client.patch(
        f"{INCIDENTS}/{incident['id']}",
        json={"service_ids": [second["id"]]},
        headers=as_actor("bob", "req-relink"),
    )
    assert response.status_code == 200, response.text

    removed = only_entry(client, request_id="req-relink", action="incident_service.deleted")
    assert removed["resource_id"] == f"{incident['id']}:{first['id']}"
    assert removed["before"]["service_id"] == first["id"]
    added = only_entry(client, request_id="req-relink", action="incident_service.created")
    assert added["after"]["service_id"] == second["id"]


def test_a_status_change_records_the_incident_and_its_automatic_timeline_event(
    client: TestClient,
) -> None:
    incident = _incident(client, {})
    response = client.patch(
        f"{INCIDENTS}/{incident['id']}",
        json={"status": "investigating"},
        headers=as_actor("bob", "req-ack"),
    )
    assert response.status_code == 200, response.text

    entries = audit_entries(client, request_id="req-ack")
    assert Counter(e["action"] for e in entries) == {
        "incident.updated": 1,
        "timeline_event.created": 1,
    }
    updated = next(e for e in entries if e["action"] == "incident.updated")
    assert (updated["before"]["status"], updated["after"]["status"]) == ("open", "investigating")
    assert "updated_at" not in updated["after"]


# --- timeline events ------------------------------------------------------------------------


def test_a_timeline_event_added_by_hand_is_recorded(client: TestClient) -> None:
    incident = _incident(client, {})
    event = post(
        client,
        f"{INCIDENTS}/{incident['id']}/timeline",
        {"type": "note", "title": "Looking at the connection pool"},
        **as_actor("dave", "req-note"),
    )

    entry = only_entry(client, action="timeline_event.created", request_id="req-note")
    assert entry["resource_id"] == event["id"]
    assert entry["actor_name"] == "dave"
    assert entry["after"]["title"] == "Looking at the connection pool"


def test_a_hand_added_events_entry_holds_its_whole_row_as_an_orm_written_event_does(
    client: TestClient,
) -> None:
    # Hand-added events are inserted without the ORM; their entries must not differ.
    incident = _incident(client, {})
    body = {
        "type": "deploy",
        "title": "v2",
        "source": "argo",
        "occurred_at": "2030-01-01T12:00:00Z",
    }
    event = post(client, f"{INCIDENTS}/{incident['id']}/timeline", body, **as_actor("dave", "r1"))

    by_hand = only_entry(client, action="timeline_event.created", request_id="r1")["after"]
    automatic = next(
        e["after"]
        for e in audit_entries(client, action="timeline_event.created")
        if e["after"]["type"] == "incident_created"
    )
    assert set(by_hand) == set(automatic)
    assert by_hand == {
        "id": event["id"],
        "organization_id": incident["organization_id"],
        "incident_id": incident["id"],
        "type": "deploy",
        "source": "argo",
        "title": "v2",
        "description": None,
        "occurred_at": "2030-01-01T12:00:00Z",
        "metadata": None,
        "actor": "dave",
        "created_at": by_hand["created_at"],
    }


def test_a_secret_in_a_timeline_events_metadata_is_redacted(client: TestClient) -> None:
    incident = _incident(client, {})
    body = {"type": "note", "title": "Rotated", "metadata": {"api_key": "ak-live-123", "n": 1}}
    post(client, f"{INCIDENTS}/{incident['id']}/timeline", body, **as_actor("dave", "req-meta"))

    entry = only_entry(client, action="timeline_event.created", request_id="req-meta")
    assert entry["after"]["metadata"] == {"api_key": REDACTED, "n": 1}


# --- notification channels: secrets never reach the log ----------------------------------------


@pytest.mark.parametrize(
    ("config", "secret_field", "secret"),
    [
        (
            {"kind": "slack_webhook", "webhook_url": "https://hooks.slack.com/services/T0/B0/abc"},
            "webhook_url",
            "https://hooks.slack.com/services/T0/B0/abc",
        ),
        (
            {"kind": "slack", "token": "xoxb-1-2-secret", "channel": "#inc"},
            "token",
            "xoxb-1-2-secret",
        ),
        ({"kind": "pagerduty", "routing_key": "R0UT1NGKEY0000"}, "routing_key", "R0UT1NGKEY0000"),
        (
            {"kind": "webhook", "url": "https://h.example/x", "secret": WEBHOOK_SECRET},
            "secret",
            WEBHOOK_SECRET,
        ),
        (
            {
                "kind": "email",
                "host": "smtp.example",
                "sender": "rs@example.com",
                "recipients": ["oncall@example.com"],
                "username": "rs",
                "password": "hunter2-smtp",
            },
            "password",
            "hunter2-smtp",
        ),
    ],
    ids=["slack_webhook", "slack", "pagerduty", "webhook", "email"],
)
def test_a_new_channels_secret_is_redacted(
    client: TestClient, config: dict[str, Any], secret_field: str, secret: str
) -> None:
    post(client, CHANNELS, {"name": "ops", "config": config})

    response = client.get("/api/audit", params={"action": "notification_channel.created"})
    assert secret not in response.text
    [entry] = response.json()["items"]
    assert entry["after"]["config"][secret_field] == REDACTED
    assert entry["after"]["config"]["kind"] == config["kind"]


def test_a_channels_new_secret_is_redacted_before_and_after(client: TestClient) -> None:
    channel = _channel(client, {})
    new_secret = "whsec_bmV3LXNpZ25pbmcta2V5"
    config = {"kind": "webhook", "url": "https://hooks.example/rs2", "secret": new_secret}
    response = client.patch(f"{CHANNELS}/{channel['id']}", json={"config": config})
    assert response.status_code == 200, response.text

    response = client.get("/api/audit", params={"action": "notification_channel.updated"})
    assert WEBHOOK_SECRET not in response.text
    assert new_secret not in response.text
    [entry] = response.json()["items"]
    assert entry["before"]["config"] == {
        "kind": "webhook",
        "url": "https://hooks.example/rs",
        "secret": REDACTED,
    }
    assert entry["after"]["config"]["secret"] == REDACTED
    assert entry["after"]["config"]["url"] == "https://hooks.example/rs2"


def test_a_deleted_channels_secret_is_redacted(client: TestClient) -> None:
    channel = _channel(client, {})
    assert client.delete(f"{CHANNELS}/{channel['id']}").status_code == 204

    response = client.get("/api/audit", params={"action": "notification_channel.deleted"})
    assert WEBHOOK_SECRET not in response.text
    [entry] = response.json()["items"]
    assert entry["before"]["config"]["secret"] == REDACTED
