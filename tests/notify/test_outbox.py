"""Specification of the notification outbox (issue 6).

Incident changes write `notifications` rows in their own transaction, one per channel that
a matching enabled policy names; a background dispatcher delivers them with backoff,
honours Retry-After, and dead-letters a row after `notify_max_attempts`. The log is
`GET /api/notifications`; `POST /api/notifications/{id}/retry` sends a row again.

Every delivery goes to a real local HTTP server: the webhook receiver, the Slack stand-in, or
a receiver that never answers.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.config import Settings
from reliability_studio.notify.channels.webhook import verify
from tests.incidents.helpers import parse_time
from tests.notify.conftest import (
    NOTIFICATIONS,
    HangingReceiver,
    all_in,
    app_client,
    create_channel,
    create_policy,
    list_notifications,
    live,
    quiet,
    wait_for_notifications,
    wait_until,
)
from tests.support.api import assert_problem, collect_pages, create_incident, create_service
from tests.support.fake_slack import TOKEN, WEBHOOK_PATH, FakeSlack
from tests.support.webhook_receiver import Answer, WebhookReceiver

SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5"
TITLE = "Checkout payments failing"
FIELDS = {
    "id",
    "channel_id",
    "channel_name",
    "event",
    "incident_id",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
    "latency_ms",
}


def webhook_channel(client: TestClient, receiver_url: str, name: str = "hooks") -> dict[str, Any]:
    """A signed webhook channel to `receiver_url`."""
    return create_channel(client, name, {"kind": "webhook", "url": receiver_url, "secret": SECRET})


def checkout_incident(client: TestClient, **fields: Any) -> dict[str, Any]:
    """A critical incident for the service `checkout` (created on first use)."""
    services = {s["name"]: s["id"] for s in client.get("/api/services").json()["items"]}
    service_id = services.get("checkout") or create_service(client, name="checkout")["id"]
    return create_incident(
        client, **{"title": TITLE, "severity": "critical", "service_ids": [service_id], **fields}
    )


def webhook_bodies(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [json.loads(r.body) for r in receiver.received]
    return bodies


# --- 1. routing and delivery -------------------------------------------------------------


def test_an_incident_is_delivered_to_every_channel_of_a_matching_policy(
    settings: Settings,
) -> None:
    with WebhookReceiver() as receiver, FakeSlack() as slack, app_client(live(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        chat = create_channel(
            client, "slack", {"kind": "slack_webhook", "webhook_url": slack.webhook_url}
        )
        create_policy(
            client,
            [hook, chat],
            events=["incident.created"],
            min_severity="high",
            services=["checkout"],
        )
        incident = checkout_incident(client)

        items = wait_for_notifications(
            client, all_in("delivered", 2), "both notifications delivered"
        )
        # The receivers saw exactly one request each.
        wait_until(lambda: len(receiver.received) >= 1, "the webhook request")
        time.sleep(0.3)  # time for a duplicate to show, if one were sent
        assert len(receiver.received) == 1, receiver.received
        slack_posts = [r for r in slack.requests if r.path == WEBHOOK_PATH]
        assert len(slack_posts) == 1, slack.requests

    by_channel = {item["channel_id"]: item for item in items}
    assert set(by_channel) == {hook["id"], chat["id"]}
    for channel in (hook, chat):
        item = by_channel[channel["id"]]
        assert set(item) >= FIELDS, item
        assert item["channel_name"] == channel["name"]
        assert item["event"] == "incident.created"
        assert item["incident_id"] == incident["id"]
        assert item["attempts"] == 1
        assert item["last_error"] is None
        assert item["delivered_at"] is not None
        assert isinstance(item["latency_ms"], int | float), item
        assert item["latency_ms"] >= 0

    request = receiver.received[0]
    assert verify(SECRET, request.headers, request.body), request.headers
    notification_id = by_channel[hook["id"]]["id"]
    assert request.headers["webhook-id"] == notification_id
    assert request.headers["idempotency-key"] == notification_id
    body = json.loads(request.body)
    assert body["type"] == "incident.created"
    assert body["incident_id"] == incident["id"]

    message = slack_posts[0].json
    assert isinstance(message, dict)
    assert TITLE in message["text"]


def test_the_log_filters_by_status_channel_and_incident(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        first = webhook_channel(client, receiver.url, "first")
        second = webhook_channel(client, receiver.url, "second")
        create_policy(client, [first, second], events=["incident.created"])
        one = checkout_incident(client, title="one")
        two = checkout_incident(client, title="two")

        everything = list_notifications(client)
        assert len(everything) == 4
        assert {i["status"] for i in everything} == {"pending"}
        # Newest first: the second incident's rows come before the first's.
        assert [i["incident_id"] for i in everything[:2]] == [two["id"], two["id"]]
        assert [i["incident_id"] for i in everything[2:]] == [one["id"], one["id"]]

        by_channel = list_notifications(client, channel_id=first["id"])
        assert {i["channel_id"] for i in by_channel} == {first["id"]}
        assert len(by_channel) == 2
        by_incident = list_notifications(client, incident_id=one["id"])
        assert {i["incident_id"] for i in by_incident} == {one["id"]}
        assert len(by_incident) == 2
        assert list_notifications(client, status="pending", channel_id=second["id"]) != []
        assert list_notifications(client, status="delivered") == []
        assert list_notifications(client, status="dead") == []


def test_the_log_pages_newest_first_without_gaps_or_repeats(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        channels = [webhook_channel(client, receiver.url, f"c{n}") for n in range(3)]
        create_policy(client, channels, events=["incident.created"])
        for n in range(3):
            checkout_incident(client, title=f"incident {n}")  # 3 rows with one created_at
        everything = list_notifications(client)
        assert len(everything) == 9
        paged, pages = collect_pages(client, NOTIFICATIONS, limit=4)
        assert pages == 3
        assert [i["id"] for i in paged] == [i["id"] for i in everything]
        times = [parse_time(i["created_at"]) for i in paged]
        assert times == sorted(times, reverse=True)


# --- 2. no match, no row ---------------------------------------------------------------------


def test_no_notification_for_another_service_or_a_lower_severity(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.created"], services=["payments"])
        create_policy(
            client, [hook], events=["incident.created"], min_severity="high", services=["search"]
        )
        create_service(client, name="payments")
        search = create_service(client, name="search")

        checkout_incident(client)  # critical, but checkout: neither policy is about it
        create_incident(client, title="slow search", severity="medium", service_ids=[search["id"]])
        create_incident(client, title="search blip", severity="low", service_ids=[search["id"]])
        assert list_notifications(client) == []

        # The control: the same policy does notify an incident that matches it.
        matching = create_incident(
            client, title="search down", severity="high", service_ids=[search["id"]]
        )
        items = list_notifications(client)
        assert [(i["incident_id"], i["event"]) for i in items] == [
            (matching["id"], "incident.created")
        ]


def test_a_disabled_policy_or_an_unsubscribed_event_notifies_nobody(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.created"], enabled=False)
        create_policy(client, [hook], events=["incident.resolved"])
        checkout_incident(client)
        assert list_notifications(client) == []


# --- 3. written with the incident, delivered after a restart ---------------------------------


def test_the_row_is_written_with_the_incident_and_survives_a_restart(settings: Settings) -> None:
    with WebhookReceiver() as receiver:
        with app_client(quiet(settings)) as client:
            hook = webhook_channel(client, receiver.url)
            create_policy(client, [hook], events=["incident.created"])
            incident = checkout_incident(client)
            items = list_notifications(client)
            assert len(items) == 1, items
            assert items[0]["status"] == "pending"
            assert items[0]["attempts"] == 0
            assert items[0]["incident_id"] == incident["id"]
            assert items[0]["delivered_at"] is None
            time.sleep(0.3)
            assert receiver.received == [], "nothing is sent while the dispatcher is off"
            assert list_notifications(client)[0]["status"] == "pending"

        with app_client(live(settings)) as client:
            delivered = wait_for_notifications(
                client, all_in("delivered", 1), "the pending row delivered after the restart"
            )
            assert delivered[0]["id"] == items[0]["id"]
        assert len(receiver.received) == 1
        assert receiver.received[0].headers["idempotency-key"] == items[0]["id"]


# --- 4. updates and resolution -----------------------------------------------------------------


def test_status_changes_notify_updated_then_resolved(settings: Settings) -> None:
    events = ["incident.created", "incident.updated", "incident.resolved"]
    with WebhookReceiver() as receiver, app_client(live(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=events)
        incident = checkout_incident(client)
        path = f"/api/incidents/{incident['id']}"
        wait_for_notifications(client, all_in("delivered", 1), "incident.created delivered")

        # A change of neither status nor severity notifies nobody.
        assert client.patch(path, json={"description": "card payments"}).status_code == 200
        time.sleep(0.2)
        assert len(list_notifications(client)) == 1

        response = client.patch(path, json={"status": "investigating"})
        assert response.status_code == 200, response.text
        items = wait_for_notifications(client, all_in("delivered", 2), "incident.updated delivered")
        assert items[0]["event"] == "incident.updated", "newest first"
        assert items[0]["incident_id"] == incident["id"]

        response = client.patch(path, json={"severity": "high"})
        assert response.status_code == 200, response.text
        items = wait_for_notifications(
            client, all_in("delivered", 3), "incident.updated (severity) delivered"
        )
        assert items[0]["event"] == "incident.updated"

        response = client.patch(path, json={"status": "resolved"})
        assert response.status_code == 200, response.text
        items = wait_for_notifications(
            client,
            lambda items: (
                any(i["event"] == "incident.resolved" for i in items)
                and all(i["status"] == "delivered" for i in items)
            ),
            "incident.resolved delivered",
        )
        wait_until(lambda: len(receiver.received) == len(items), "one request per notification")

    bodies = webhook_bodies(receiver)
    assert [b["type"] for b in bodies[:3]] == events[:1] + ["incident.updated"] * 2
    assert "incident.resolved" in [b["type"] for b in bodies[3:]]
    assert all(b["incident_id"] == incident["id"] for b in bodies)
    resolved = next(b for b in bodies if b["type"] == "incident.resolved")
    assert resolved["status"] == "resolved"


def test_closing_an_incident_notifies_resolved(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.resolved"])
        incident = checkout_incident(client)
        assert list_notifications(client) == []
        response = client.patch(f"/api/incidents/{incident['id']}", json={"status": "closed"})
        assert response.status_code == 200, response.text
        items = list_notifications(client)
        assert [(i["event"], i["incident_id"]) for i in items] == [
            ("incident.resolved", incident["id"])
        ]


# --- 5. dead letters and retry -----------------------------------------------------------------


def test_a_failing_receiver_dead_letters_the_row_and_retry_delivers_it(
    settings: Settings,
) -> None:
    with WebhookReceiver() as receiver:
        # Exactly notify_max_attempts failures: a fourth attempt would be answered 204.
        receiver.answer(*[Answer(500, body=b"receiver broken")] * 3)
        with app_client(live(settings)) as client:
            hook = webhook_channel(client, receiver.url)
            create_policy(client, [hook], events=["incident.created"])
            checkout_incident(client)
            seen: set[int] = set()

            def dead(items: list[dict[str, Any]]) -> bool:
                seen.update(i["attempts"] for i in items)
                return len(items) == 1 and items[0]["status"] == "dead"

            (row,) = wait_for_notifications(client, dead, "the row dead after 3 attempts")
            time.sleep(0.3)  # a dead row is not tried again
            assert list_notifications(client)[0]["status"] == "dead"
        assert row["attempts"] == 3
        assert "500" in (row["last_error"] or ""), row
        assert row["delivered_at"] is None
        assert len(receiver.received) == 3
        assert max(seen) == 3
        # Every attempt carried the same idempotency key.
        assert {r.headers["idempotency-key"] for r in receiver.received} == {row["id"]}

        with app_client(quiet(settings)) as client:
            response = client.post(f"{NOTIFICATIONS}/{row['id']}/retry")
            assert response.status_code == 202, response.text
            (again,) = list_notifications(client)
            assert again["id"] == row["id"]
            assert again["status"] == "pending"
            assert again["attempts"] == 0

        receiver.answer(Answer(200))
        with app_client(live(settings)) as client:
            (done,) = wait_for_notifications(
                client, all_in("delivered", 1), "the retried row delivered"
            )
        assert done["id"] == row["id"]
        assert done["attempts"] == 1
        assert done["delivered_at"] is not None
        assert len(receiver.received) == 4


# --- 6. Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff_max", "earliest", "latest"),
    [
        pytest.param(3.0, 0.9, 2.5, id="honoured"),
        pytest.param(0.2, 0.15, 0.85, id="capped"),
    ],
)
def test_retry_after_is_honoured_up_to_the_backoff_cap(
    settings: Settings, backoff_max: float, earliest: float, latest: float
) -> None:
    with WebhookReceiver() as receiver:
        receiver.answer(Answer(429, headers={"Retry-After": "1"}), Answer(200))
        with app_client(live(settings, notify_backoff_max_seconds=backoff_max)) as client:
            hook = webhook_channel(client, receiver.url)
            create_policy(client, [hook], events=["incident.created"])
            checkout_incident(client)
            wait_until(lambda: len(receiver.received) >= 1, "the first attempt")
            first = time.monotonic()
            wait_until(lambda: len(receiver.received) >= 2, "the second attempt")
            gap = time.monotonic() - first
            (row,) = wait_for_notifications(client, all_in("delivered", 1), "delivered")
        assert earliest <= gap <= latest, (
            f"retried {gap:.2f} s after a 429 with Retry-After: 1 (backoff cap "
            f"{backoff_max} s); expected between {earliest} and {latest} s"
        )
        assert row["attempts"] == 2


# --- 7. isolation ------------------------------------------------------------------------------


def test_a_hanging_receiver_does_not_hold_up_other_channels(settings: Settings) -> None:
    with HangingReceiver() as hanging, WebhookReceiver() as receiver:
        with app_client(live(settings)) as client:
            stuck = webhook_channel(client, hanging.url, "stuck")
            quick = webhook_channel(client, receiver.url, "quick")
            legacy = create_service(client, name="legacy")
            create_policy(client, [stuck], events=["incident.created"], services=["legacy"])
            create_policy(client, [quick], events=["incident.created"], services=["checkout"])

            create_incident(client, title="legacy down", service_ids=[legacy["id"]])
            wait_until(lambda: hanging.requests >= 1, "the dispatcher sending to the hung receiver")

            started = time.monotonic()
            checkout_incident(client)
            (quick_row,) = wait_for_notifications(
                client,
                all_in("delivered", 1),
                "the quick channel delivered while the other hangs",
                timeout=2.0,
                channel_id=quick["id"],
            )
            took = time.monotonic() - started
            (stuck_row,) = list_notifications(client, channel_id=stuck["id"])
            assert stuck_row["status"] in {"pending", "delivering"}, stuck_row
            shutdown = time.monotonic()
        stopped_in = time.monotonic() - shutdown
    assert took <= 2.0
    assert quick_row["attempts"] == 1
    assert len(receiver.received) == 1
    assert stopped_in < 5.0, f"the app took {stopped_in:.1f} s to stop with a send in flight"


# --- 8. retry refusals -------------------------------------------------------------------------


def test_retry_refuses_unknown_and_delivered_notifications(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(live(settings)) as client:
        assert_problem(client.post(f"{NOTIFICATIONS}/{uuid.uuid4()}/retry"), 404)

        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.created"])
        checkout_incident(client)
        (row,) = wait_for_notifications(client, all_in("delivered", 1), "delivered")
        assert_problem(client.post(f"{NOTIFICATIONS}/{row['id']}/retry"), 409)
        time.sleep(0.2)
        assert list_notifications(client)[0]["status"] == "delivered"
        assert len(receiver.received) == 1


def test_retry_of_a_pending_row_is_accepted(settings: Settings) -> None:
    with WebhookReceiver() as receiver, app_client(quiet(settings)) as client:
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.created"])
        checkout_incident(client)
        (row,) = list_notifications(client)
        response = client.post(f"{NOTIFICATIONS}/{row['id']}/retry")
        assert response.status_code == 202, response.text
        (again,) = list_notifications(client)
        assert (again["status"], again["attempts"]) == ("pending", 0)
        assert len(list_notifications(client)) == 1, "a retry does not add a row"


def test_assigning_a_task_notifies_the_channels_subscribed_to_assignments(
    settings: Settings,
) -> None:
    with app_client(quiet(settings)) as client:
        channel = create_channel(
            client, "tasks", {"kind": "webhook", "url": "https://hooks.example/tasks"}
        )
        create_policy(client, [channel], events=["task.assigned"])
        incident = client.post(
            "/api/incidents", json={"title": "Payment Service Down", "severity": "high"}
        ).json()
        unassigned = client.post(
            f"/api/incidents/{incident['id']}/tasks", json={"title": "Roll back"}
        ).json()
        assert list_notifications(client) == []

        client.post(
            f"/api/incidents/{incident['id']}/tasks",
            json={"title": "Page the DBA", "assignee": "alice"},
        )
        client.patch(
            f"/api/incidents/{incident['id']}/tasks/{unassigned['id']}",
            json={"assignee": "bob"},
        )
        client.patch(
            f"/api/incidents/{incident['id']}/tasks/{unassigned['id']}",
            json={"title": "Roll back now"},  # no new assignee: no new notification
        )
        rows = list_notifications(client)
        assert [row["event"] for row in rows] == ["task.assigned", "task.assigned"]
        assert {row["incident_id"] for row in rows} == {incident["id"]}


def test_a_delivery_cut_short_by_shutdown_is_handed_back_at_once(settings: Settings) -> None:
    """Stopping the app mid-send puts the row back to pending now, not after its lease."""
    with HangingReceiver() as hanging:
        with app_client(live(settings, notify_lease_seconds=3600)) as client:
            channel = create_channel(client, "slow", {"kind": "webhook", "url": hanging.url})
            create_policy(client, [channel])
            client.post(
                "/api/incidents", json={"title": "Payment Service Down", "severity": "high"}
            )
            wait_until(lambda: hanging.requests == 1, "the receiver took the request")
        # The app has shut down while the request hung.
        with app_client(quiet(settings)) as client:
            [row] = list_notifications(client)
            assert row["status"] == "pending", row
            assert row["attempts"] == 1
            assert parse_time(row["next_attempt_at"]) < parse_time(row["created_at"]) + timedelta(
                minutes=5
            )


def test_an_update_claimed_with_its_incidents_first_message_threads_under_it(
    settings: Settings,
) -> None:
    with FakeSlack() as slack:
        with app_client(quiet(settings)) as client:  # both rows wait, then go in one pass
            bot = create_channel(
                client,
                "bot",
                {
                    "kind": "slack",
                    "token": TOKEN,
                    "channel": "#incidents",
                    "api_base": slack.api_base,
                },
            )
            create_policy(client, [bot], events=["incident.created", "incident.updated"])
            incident = checkout_incident(client)
            path = f"/api/incidents/{incident['id']}"
            assert client.patch(path, json={"status": "investigating"}).status_code == 200
        with app_client(live(settings, notify_slack_rate_per_second=50)) as client:
            wait_for_notifications(client, all_in("delivered", 2), "both delivered")
    parent, reply = slack.messages
    assert "thread_ts" not in parent
    assert reply["thread_ts"] == parent["ts"]


def test_a_new_notification_wakes_the_dispatcher_instead_of_waiting_for_its_poll(
    settings: Settings,
) -> None:
    with (
        WebhookReceiver() as receiver,
        app_client(live(settings, notify_poll_seconds=60)) as client,
    ):
        hook = webhook_channel(client, receiver.url)
        create_policy(client, [hook], events=["incident.created"])
        time.sleep(0.2)  # the dispatcher's first pass is over; the next poll is a minute away
        started = time.monotonic()
        checkout_incident(client)
        wait_until(lambda: len(receiver.received) == 1, "delivered", timeout=5)
        assert time.monotonic() - started < 2.0
