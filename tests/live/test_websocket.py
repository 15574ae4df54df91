"""Specification of the WebSocket stream `/api/ws`, on each backend."""

from __future__ import annotations

import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.live.conftest import (
    LiveServer,
    add_note,
    create_incident,
    create_service,
)


def test_a_client_sees_a_timeline_event_within_one_second_of_the_post(
    live_server: LiveServer,
) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    with live_server.ws(f"?incident_id={incident_id}") as client:
        posted = time.monotonic()
        event_id = add_note(live_server, incident_id, "Rolled back 4.2.1")
        event = client.wait_for(lambda e: e.get("id") == event_id, timeout=1.0)
        assert time.monotonic() - posted < 1.0
    assert event["type"] == "timeline_event.created"
    assert event["incident_id"] == incident_id
    assert event["data"]["title"] == "Rolled back 4.2.1"
    assert event["href"] == f"/api/incidents/{incident_id}/timeline/{event_id}"
    assert live_server.http.get(event["href"]).status_code == 200


def test_the_first_frame_confirms_the_subscription(live_server: LiveServer) -> None:
    incident_id = str(uuid.uuid4())
    url = live_server.base_url.replace("http://", "ws://") + f"/api/ws?incident_id={incident_id}"
    from websockets.sync.client import connect

    with connect(url) as connection:
        assert connection.recv(timeout=5) == (
            f'[{{"type":"subscribed","incident_ids":["{incident_id}"],"service_ids":[]}}]'
        )


def test_a_client_subscribed_to_everything_sees_a_new_incident(live_server: LiveServer) -> None:
    service_id = create_service(live_server, "payments")
    with live_server.ws() as client:
        incident_id = create_incident(live_server, "Payments down", service_id)
        event = client.wait_for(lambda e: e["type"] == "incident.created")
    assert event["id"] == incident_id
    assert event["service_ids"] == [service_id]
    assert event["data"] == {"title": "Payments down", "status": "open", "severity": "high"}


def test_an_incident_subscription_receives_only_that_incident(live_server: LiveServer) -> None:
    watched = create_incident(live_server, "Watched")
    other = create_incident(live_server, "Other")
    with live_server.ws(f"?incident_id={watched}") as client:
        add_note(live_server, other, "not for this client")
        mine = add_note(live_server, watched, "for this client")
        client.wait_for(lambda e: e.get("id") == mine)
        client.quiet_for(0.3)
    seen = {e["incident_id"] for e in client.received if e["type"] != "subscribed"}
    assert seen == {watched}


def test_a_service_subscription_receives_changes_of_incidents_linked_to_it(
    live_server: LiveServer,
) -> None:
    checkout = create_service(live_server, "checkout")
    search = create_service(live_server, "search")
    with live_server.ws(f"?service_id={checkout}") as client:
        create_incident(live_server, "Search slow", search)
        linked = create_incident(live_server, "Checkout errors", checkout, search)
        note = add_note(live_server, linked, "Mitigated")
        client.wait_for(lambda e: e.get("id") == note)
    changes = [event for event in client.received if event["type"] != "subscribed"]
    assert {event["incident_id"] for event in changes} == {linked}
    assert all(checkout in event["service_ids"] for event in changes)


def test_status_changes_arrive_as_incident_updates(live_server: LiveServer) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    with live_server.ws(f"?incident_id={incident_id}") as client:
        response = live_server.http.patch(
            f"/api/incidents/{incident_id}", json={"status": "investigating"}
        )
        assert response.status_code == 200, response.text
        event = client.wait_for(lambda e: e["type"] == "incident.updated")
    assert event["data"]["status"] == "investigating"


def test_tasks_arrive_when_created_updated_and_deleted(live_server: LiveServer) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    tasks = f"/api/incidents/{incident_id}/tasks"
    with live_server.ws(f"?incident_id={incident_id}") as client:
        task_id = live_server.http.post(tasks, json={"title": "Roll back"}).json()["id"]
        client.wait_for(lambda e: e["type"] == "task.created" and e["id"] == task_id)
        live_server.http.patch(f"{tasks}/{task_id}", json={"assignee": "ana"})
        updated = client.wait_for(lambda e: e["type"] == "task.updated")
        assert live_server.http.delete(f"{tasks}/{task_id}").status_code == 204
        deleted = client.wait_for(lambda e: e["type"] == "task.deleted")
    assert updated["data"]["assignee"] == "ana"
    assert deleted["id"] == task_id
    assert deleted["href"] is None


def test_a_new_alert_arrives_for_its_service(live_server: LiveServer) -> None:
    service_id = create_service(live_server, "checkout")
    with live_server.ws(f"?service_id={service_id}") as client:
        response = live_server.http.post(
            "/api/alerts",
            json={
                "title": "HighErrorRate",
                "severity": "critical",
                "labels": {"alertname": "HighErrorRate", "service": "checkout"},
            },
        )
        assert response.status_code == 201, response.text
        event = client.wait_for(lambda e: e["type"] == "alert.created")
    assert event["id"] == response.json()["id"]
    assert event["data"]["severity"] == "critical"


def test_subscribing_again_replaces_the_subscription(live_server: LiveServer) -> None:
    first = create_incident(live_server, "First")
    second = create_incident(live_server, "Second")
    with live_server.ws(f"?incident_id={first}") as client:
        client.send({"action": "subscribe", "incident_ids": [second]})
        confirmation = client.wait_for(lambda e: e["type"] == "subscribed")
        since = len(client.received)
        add_note(live_server, first, "no longer watched")
        note = add_note(live_server, second, "now watched")
        client.wait_for(lambda e: e.get("id") == note)
    assert confirmation["incident_ids"] == [second]
    assert {e["incident_id"] for e in client.received[since:]} == {second}


def test_a_ping_is_answered_with_a_pong(live_server: LiveServer) -> None:
    with live_server.ws() as client:
        client.send({"action": "ping"})
        assert client.wait_for(lambda e: e["type"] == "pong") == {"type": "pong"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"action": "subscribe", "incident_ids": ["not-a-uuid"]}, "incident_ids"),
        ({"action": "subscribe", "service_ids": "one"}, "service_ids"),
        ({"action": "dance"}, "action"),
    ],
)
def test_a_bad_command_gets_an_error_naming_the_field_and_the_stream_goes_on(
    live_server: LiveServer, message: dict[str, object], field: str
) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    with live_server.ws(f"?incident_id={incident_id}") as client:
        client.send(message)
        error = client.wait_for(lambda e: e["type"] == "error")
        note = add_note(live_server, incident_id, "still streaming")
        client.wait_for(lambda e: e.get("id") == note)
    assert error["field"] == field


def test_a_bad_id_in_the_query_closes_with_policy_violation(live_server: LiveServer) -> None:
    from websockets.sync.client import connect

    url = live_server.base_url.replace("http://", "ws://") + "/api/ws?service_id=nope"
    with connect(url) as connection, pytest.raises(ConnectionClosed) as closed:
        connection.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "service_ids" in closed.value.rcvd.reason
