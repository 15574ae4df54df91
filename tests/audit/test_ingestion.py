"""Specification of the audit of alert ingestion: the alerts are stored in bulk, so each
ingestion request is one entry with its counts."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.audit.helpers import as_actor, audit_entries, only_entry
from tests.support.api import alertmanager_alert, post_alertmanager


def test_an_ingestion_request_is_one_entry_with_its_counts(client: TestClient) -> None:
    post_alertmanager(
        client,
        alertmanager_alert("HighErrorRate"),
        alertmanager_alert("HighLatency"),
        headers=as_actor("alertmanager", "req-ingest"),
    )

    entry = only_entry(client, resource_type="alert")
    assert (entry["action"], entry["request_id"], entry["resource_id"]) == (
        "alerts.ingested",
        "req-ingest",
        None,
    )
    assert entry["before"] is None
    assert entry["after"] == {
        "integration": "alertmanager",
        "received": 2,
        "created": 2,
        "updated": 0,
        "duplicates": 0,
        "stale": 0,
        "unknown_services": ["checkout"],
    }


def test_a_repeated_delivery_is_recorded_with_its_duplicates(client: TestClient) -> None:
    alert = alertmanager_alert("HighErrorRate")
    post_alertmanager(client, alert)
    post_alertmanager(client, alert, headers=as_actor("alertmanager", "req-again"))

    entry = only_entry(client, action="alerts.ingested", request_id="req-again")
    assert (entry["after"]["created"], entry["after"]["duplicates"]) == (0, 1)
    assert len(audit_entries(client, action="alerts.ingested")) == 2


def test_an_alert_posted_to_the_alerts_api_is_recorded_as_an_ingestion(
    client: TestClient,
) -> None:
    response = client.post(
        "/api/alerts",
        json={"title": "Disk almost full", "labels": {"alertname": "DiskFull"}},
        headers=as_actor("script", "req-api-alert"),
    )
    assert response.status_code == 201, response.text

    entry = only_entry(client, action="alerts.ingested", request_id="req-api-alert")
    assert (entry["after"]["integration"], entry["after"]["created"]) == ("api", 1)
