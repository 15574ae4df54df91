"""Specification: every kind of `POST` honours `Idempotency-Key`, the alert webhooks too.

Each case posts the same request twice under one key and counts what exists afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.alerts.models import Alert
from reliability_studio.config import Settings
from reliability_studio.incidents.models import Incident
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.timeline.models import TimelineEvent
from tests.idempotency.helpers import count, keyed
from tests.support.api import alertmanager_alert, alertmanager_payload, create_incident


@dataclass(frozen=True)
class Case:
    """A POST: its path (given an incident id), body, status and the table it writes."""

    path: Callable[[str], str]
    body: dict[str, Any]
    status: int
    table: Any


CASES = {
    "incident": Case(
        lambda _: "/api/incidents", {"title": "Checkout down", "severity": "high"}, 201, Incident
    ),
    "timeline event": Case(
        lambda incident: f"/api/incidents/{incident}/timeline",
        {"type": "note", "source": "human", "title": "Rolled back"},
        201,
        TimelineEvent,
    ),
    "task": Case(
        lambda incident: f"/api/incidents/{incident}/tasks",
        {"title": "Raise the pool size", "assignee": "alice"},
        201,
        IncidentTask,
    ),
    "alertmanager webhook": Case(
        lambda _: "/api/integrations/alertmanager",
        alertmanager_payload(alertmanager_alert("HighErrorRate")),
        202,
        Alert,
    ),
    "alert": Case(
        lambda _: "/api/alerts",
        {"title": "Checkout error rate above 5%", "labels": {"service": "checkout"}},
        201,
        Alert,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_retried_post_answers_as_the_first_and_writes_once(
    client: TestClient, settings: Settings, case: Case
) -> None:
    path = case.path(create_incident(client)["id"])
    before = count(settings, case.table)
    headers = keyed()

    first = client.post(path, json=case.body, headers=headers)
    retry = client.post(path, json=case.body, headers=headers)

    assert first.status_code == case.status, first.text
    assert (retry.status_code, retry.json()) == (case.status, first.json())
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers.get("location") == first.headers.get("location")
    assert count(settings, case.table) == before + 1
