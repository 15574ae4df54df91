"""Specification of "durable first": an accepted alert is committed before the 2xx leaves,
so a restart between ingestion and correlation loses nothing, and concurrent deliveries of
the same alert make one alert, counted once per delivery.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.alerts.conftest import wait_for_correlation
from tests.support.api import (
    ALERTMANAGER_WEBHOOK,
    alertmanager_alert,
    alertmanager_payload,
    post_alertmanager,
)

DELIVERIES = 8


def alerts_of(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """The first 500 alerts listed for `params`."""
    response = client.get("/api/alerts", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def incidents_of(client: TestClient) -> list[dict[str, Any]]:
    """Every incident (up to 500)."""
    response = client.get("/api/incidents", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def live(settings: Settings) -> Settings:
    """`settings` with the correlator running, polling often."""
    return settings.model_copy(
        update={"alert_correlation_enabled": True, "alert_correlation_poll_seconds": 0.05}
    )


def test_alerts_accepted_before_a_restart_are_correlated_after_it(settings: Settings) -> None:
    # `settings` runs no correlator: the process "dies" between ingestion and correlation.
    with TestClient(create_app(settings)) as before_restart:
        summary = post_alertmanager(
            before_restart,
            alertmanager_alert(labels={"instance": "10.0.3.17:8080"}),
            alertmanager_alert(labels={"instance": "10.0.3.18:8080"}),
        )
    accepted = set(summary["alert_ids"])
    assert len(accepted) == 2

    with TestClient(create_app(settings)) as reader:  # still no correlator
        waiting = alerts_of(reader, correlated="false")
        assert {alert["id"] for alert in waiting} == accepted
        assert all(alert["incident_id"] is None for alert in waiting)
        assert incidents_of(reader) == []

    with TestClient(create_app(live(settings))) as after_restart:
        wait_for_correlation(after_restart)
        [incident] = incidents_of(after_restart)
        response = after_restart.get(f"/api/incidents/{incident['id']}/alerts")
        assert response.status_code == 200, response.text
        assert {alert["id"] for alert in response.json()["items"]} == accepted
        assert alerts_of(after_restart, correlated="false") == []


def test_concurrent_deliveries_of_one_alert_store_one_alert_counted_once_each(
    settings: Settings,
) -> None:
    payload = alertmanager_payload(alertmanager_alert())
    start = threading.Barrier(DELIVERIES)

    with TestClient(create_app(live(settings))) as client:

        def deliver(_: int) -> tuple[int, dict[str, Any]]:
            start.wait(timeout=10)
            response = client.post(ALERTMANAGER_WEBHOOK, json=payload)
            return response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=DELIVERIES) as pool:
            answers = list(pool.map(deliver, range(DELIVERIES)))

        assert [status for status, _ in answers] == [202] * DELIVERIES, answers
        summaries = [summary for _, summary in answers]
        assert sum(summary["created"] for summary in summaries) == 1
        assert sum(summary["duplicates"] for summary in summaries) == DELIVERIES - 1
        assert len({summary["alert_ids"][0] for summary in summaries}) == 1
        [alert] = alerts_of(client)
        assert alert["receive_count"] == DELIVERIES
