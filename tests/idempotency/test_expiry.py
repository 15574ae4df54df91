"""Specification: keys are kept 24 hours, then forgotten and purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from reliability_studio.config import Settings
from reliability_studio.idempotency import service
from reliability_studio.incidents.models import Incident
from tests.idempotency.helpers import age_keys, count, keyed, sqlite_only, stored_keys

INCIDENT = {"title": "Checkout down", "severity": "high"}
A_DAY = timedelta(hours=24)


def test_a_key_first_used_24_hours_ago_starts_a_new_request(
    client: TestClient, settings: Settings
) -> None:
    headers = keyed()
    first = client.post("/api/incidents", json=INCIDENT, headers=headers)
    age_keys(settings, A_DAY)

    again = client.post("/api/incidents", json=INCIDENT, headers=headers)

    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert count(settings, Incident) == 2


@sqlite_only
def test_a_key_a_little_younger_than_24_hours_still_replays(
    client: TestClient, settings: Settings
) -> None:
    headers = keyed()
    client.post("/api/incidents", json=INCIDENT, headers=headers)
    age_keys(settings, A_DAY - timedelta(minutes=1))

    again = client.post("/api/incidents", json=INCIDENT, headers=headers)

    assert again.headers["idempotent-replayed"] == "true"
    assert count(settings, Incident) == 1


def test_expired_keys_are_purged_by_the_keyed_requests_that_follow(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PURGE_EVERY", timedelta(0))  # at every reservation
    client.post("/api/incidents", json=INCIDENT, headers=keyed("old"))
    client.post("/api/incidents", json=INCIDENT, headers=keyed("young"))
    age_keys(settings, A_DAY + timedelta(seconds=1), key="old")
    age_keys(settings, A_DAY - timedelta(minutes=1), key="young")

    client.post("/api/incidents", json=INCIDENT, headers=keyed("new"))

    assert sorted(row.key for row in stored_keys(settings)) == ["new", "young"]
