"""Specification of `/api/notification-channels` and `/api/notification-policies`."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem

CHANNELS = "/api/notification-channels"
POLICIES = "/api/notification-policies"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/abcdefgh1234"


def _channel(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"chan-{uuid.uuid4().hex[:6]}",
        "config": {"kind": "webhook", "url": "https://hooks.example/rs", "secret": WEBHOOK_SECRET},
        **fields,
    }
    response = client.post(CHANNELS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_channel_is_created_with_its_location(client: TestClient) -> None:
    response = client.post(
        CHANNELS,
        json={"name": "ops", "config": {"kind": "slack_webhook", "webhook_url": SLACK_URL}},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{CHANNELS}/{response.json()['id']}"
    assert client.get(response.headers["Location"]).json()["name"] == "ops"


@pytest.mark.parametrize(
    ("config", "secret_field", "secret"),
    [
        ({"kind": "slack_webhook", "webhook_url": SLACK_URL}, "webhook_url", SLACK_URL),
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
                "password": "hunter2-pass",
            },
            "password",
            "hunter2-pass",
        ),
    ],
)
def test_secrets_are_never_shown_back(
    client: TestClient, config: dict[str, Any], secret_field: str, secret: str
) -> None:
    created = client.post(CHANNELS, json={"name": "c", "config": config})
    assert created.status_code == 201, created.text
    for response in (
        created,
        client.get(f"{CHANNELS}/{created.json()['id']}"),
        client.get(CHANNELS),
    ):
        assert secret not in response.text
    shown = created.json()["config"][secret_field]
    assert shown == {"set": True, "last4": secret[-4:]}


def test_a_channel_name_is_unique(client: TestClient) -> None:
    _channel(client, name="dup")
    response = client.post(
        CHANNELS, json={"name": "dup", "config": {"kind": "webhook", "url": "https://x.example"}}
    )
    assert_problem(response, 409, field="name")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"kind": "carrier-pigeon"}, "config"),
        ({"kind": "webhook", "url": "ftp://x.example"}, "config.webhook.url"),
        ({"kind": "slack", "channel": "#x"}, "config.slack.token"),
        (
            {"kind": "email", "host": "smtp", "sender": "not-an-address", "recipients": ["a@b.c"]},
            "config.email.sender",
        ),
        (
            {"kind": "email", "host": "smtp", "sender": "a@b.c", "recipients": []},
            "config.email.recipients",
        ),
        ({"kind": "webhook", "url": "https://x.example", "extra": 1}, "config.webhook.extra"),
    ],
)
def test_a_bad_channel_config_is_refused_naming_the_field(
    client: TestClient, config: dict[str, Any], field: str
) -> None:
    response = client.post(CHANNELS, json={"name": "bad", "config": config})
    problem = assert_problem(response, 422)
    assert any(error["field"].startswith(field) for error in problem["errors"]), problem
    assert client.get(CHANNELS).json()["items"] == []


def test_patching_a_channel_can_disable_it_and_replace_its_config(client: TestClient) -> None:
    channel = _channel(client)
    response = client.patch(
        f"{CHANNELS}/{channel['id']}",
        json={"enabled": False, "config": {"kind": "pagerduty", "routing_key": "NEWKEY1234"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False
    assert response.json()["kind"] == "pagerduty"
    assert response.json()["config"]["routing_key"]["last4"] == "1234"


def test_a_policy_routes_events_to_channels(client: TestClient) -> None:
    channel = _channel(client)
    response = client.post(
        POLICIES,
        json={
            "name": "critical to pager",
            "events": ["incident.created", "incident.resolved"],
            "min_severity": "high",
            "services": ["checkout"],
            "channel_ids": [channel["id"]],
        },
    )
    assert response.status_code == 201, response.text
    policy = response.json()
    assert policy["channel_ids"] == [channel["id"]]
    assert policy["min_severity"] == "high"
    assert client.get(POLICIES).json()["items"][0]["id"] == policy["id"]


def test_a_policy_naming_an_unknown_channel_is_refused(client: TestClient) -> None:
    channel = _channel(client)
    response = client.post(
        POLICIES,
        json={
            "name": "p",
            "events": ["incident.created"],
            "channel_ids": [channel["id"], str(uuid.uuid4())],
        },
    )
    assert_problem(response, 422, field="channel_ids.1")
    assert client.get(POLICIES).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["incident.exploded"]}, "events.0"),
        ({"events": []}, "events"),
        ({"min_severity": "urgent"}, "min_severity"),
        ({"channel_ids": []}, "channel_ids"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    channel = _channel(client)
    full = {"name": "p", "events": ["incident.created"], "channel_ids": [channel["id"]], **body}
    assert_problem(client.post(POLICIES, json=full), 422, field=field)


def test_a_channel_used_by_a_policy_cannot_be_deleted(client: TestClient) -> None:
    channel = _channel(client)
    policy = client.post(
        POLICIES, json={"name": "p", "events": ["incident.created"], "channel_ids": [channel["id"]]}
    ).json()
    assert_problem(client.delete(f"{CHANNELS}/{channel['id']}"), 409)
    assert client.delete(f"{POLICIES}/{policy['id']}").status_code == 204
    assert client.delete(f"{CHANNELS}/{channel['id']}").status_code == 204
    assert_problem(client.get(f"{CHANNELS}/{channel['id']}"), 404)


def test_patching_a_policy_changes_only_what_is_sent(client: TestClient) -> None:
    channel = _channel(client)
    policy = client.post(
        POLICIES, json={"name": "p", "events": ["incident.created"], "channel_ids": [channel["id"]]}
    ).json()
    response = client.patch(f"{POLICIES}/{policy['id']}", json={"enabled": False})
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False
    assert response.json()["events"] == ["incident.created"]
    assert_problem(
        client.patch(f"{POLICIES}/{policy['id']}", json={"events": None}), 422, field="events"
    )
