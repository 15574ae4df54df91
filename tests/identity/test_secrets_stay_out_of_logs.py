"""Specification: no token or secret the server is given ever appears in its logs."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from tests.support.served import serving
from tests.support.webhook_receiver import WebhookReceiver

OWNER = "rs_" + "o" * 43
WRONG = "rs_" + "w" * 43
INGEST = "ingest-secret-4f8a2c91d7"
CHANNEL_SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWxvZ3M="
SLACK_PATH = "/services/T0SECRET/B0SECRET/XyZsecretWebhookPart"  # a Slack URL is a secret


def test_tokens_and_secrets_used_against_the_server_are_not_in_its_logs(tmp_path: Path) -> None:
    used = [OWNER, WRONG, INGEST, CHANNEL_SECRET, SLACK_PATH]
    with (
        WebhookReceiver() as slack,
        serving(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'rs.db'}",
            AUTH_MODE="token",
            BOOTSTRAP_TOKEN=OWNER,
            INGEST_TOKEN_ALERTS=INGEST,
            INGEST_TOKEN_LOCATIONS="header,query",
            LOG_LEVEL="DEBUG",  # the most the server ever writes
            NOTIFY_POLL_SECONDS="0.1",
        ) as server,
    ):
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            owner = {"Authorization": f"Bearer {OWNER}"}
            created = client.post("/api/tokens", json={"name": "ci"}, headers=owner)
            assert created.status_code == 201
            used.append(created.json()["token"])
            assert (
                client.get("/api/me", headers={"Authorization": f"Bearer {WRONG}"}).status_code
                == 401
            )
            alert = {"title": "A", "labels": {"alertname": "A"}}
            assert client.post(f"/api/alerts?token={INGEST}", json=alert).status_code == 201
            assert client.post("/api/alerts?token=wrong-one", json=alert).status_code == 401
            channel = client.post(
                "/api/notification-channels",
                json={
                    "name": "hooks",
                    "config": {
                        "kind": "webhook",
                        "url": "https://hooks.example/x",
                        "secret": CHANNEL_SECRET,
                    },
                },
                headers=owner,
            )
            assert channel.status_code == 201, channel.text
            to_slack = client.post(
                "/api/notification-channels",
                json={
                    "name": "slack",
                    "config": {"kind": "slack_webhook", "webhook_url": slack.url + SLACK_PATH},
                },
                headers=owner,
            ).json()
            policy = {
                "name": "all",
                "events": ["incident.created"],
                "channel_ids": [to_slack["id"]],
            }
            assert client.post("/api/notification-policies", json=policy, headers=owner).is_success
            incident = {"title": "Down", "severity": "high"}
            assert client.post("/api/incidents", json=incident, headers=owner).is_success
            deadline = time.monotonic() + 10
            while not slack.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slack.received, "the Slack message was sent (and could have been logged)"
            assert (
                client.get("/api/me", headers={"Authorization": f"Bearer {used[-1]}"}).status_code
                == 200
            )
        logs = server.output()
    assert "/api/alerts" in logs  # the access log did record the requests
    assert [secret for secret in used if secret in logs] == []
