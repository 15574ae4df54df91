"""Specification of reading the audit log: `GET /api/audit`, newest first, its filters and
its pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.audit import capture
from reliability_studio.config import Settings
from tests.audit.helpers import AUDIT, as_actor, audit_entries, new_service, user, write
from tests.incidents.helpers import Clock
from tests.support.api import assert_problem, collect_pages

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time audit entries are stamped with, frozen at START until advanced."""
    clock = Clock(START)
    monkeypatch.setattr(capture, "utcnow", clock)
    return clock


def create_service(client: TestClient, name: str, **headers: str) -> str:
    response = client.post("/api/services", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    service_id: str = response.json()["id"]
    return service_id


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["after"]["name"] for entry in entries]


def test_entries_are_listed_newest_first(client: TestClient, clock: Clock) -> None:
    for name in ("first", "second", "third"):
        create_service(client, name)
        clock.advance(1)

    entries = audit_entries(client)
    assert names(entries) == ["third", "second", "first"]
    assert entries[0]["occurred_at"] == "2030-01-01T12:00:02Z"


def test_pages_walk_every_entry_once_newest_first(client: TestClient, clock: Clock) -> None:
    for number in range(7):
        create_service(client, f"svc-{number}")
        clock.advance(1)

    entries, pages = collect_pages(client, AUDIT, limit=3)
    assert pages == 3
    assert names(entries) == [f"svc-{number}" for number in reversed(range(7))]


def test_entries_of_one_commit_are_paged_without_loss(client: TestClient) -> None:
    services = [create_service(client, f"svc-{n}") for n in range(3)]
    body = {"title": "Everything is down", "severity": "critical", "service_ids": services}
    response = client.post("/api/incidents", json=body, headers={"X-Request-ID": "req-open"})
    assert response.status_code == 201, response.text

    entries, _ = collect_pages(client, AUDIT, limit=2, request_id="req-open")
    assert len(entries) == 5  # the incident, three links and its first event
    assert len({entry["id"] for entry in entries}) == 5


def test_the_actor_filter_matches_an_actors_name(client: TestClient) -> None:
    create_service(client, "alices", **as_actor("alice", "req-1"))
    create_service(client, "bobs", **as_actor("bob", "req-2"))

    assert names(audit_entries(client, actor="alice")) == ["alices"]


def test_the_actor_filter_matches_an_actors_id(settings: Settings, client: TestClient) -> None:
    async def request(session: AsyncSession) -> None:
        session.add(new_service("by-id"))
        await session.commit()

    write(settings, user("alice", id="7f1c2a4e-user"), request)
    create_service(client, "by-name", **as_actor("7f1c2a4e", "req-1"))

    assert names(audit_entries(client, actor="7f1c2a4e-user")) == ["by-id"]


def test_the_action_filter_takes_several_actions(client: TestClient) -> None:
    service_id = create_service(client, "checkout")
    assert client.patch(f"/api/services/{service_id}", json={"team": "core"}).status_code == 200
    assert client.delete(f"/api/services/{service_id}").status_code == 204

    entries = audit_entries(client, action=["service.created", "service.deleted"])
    assert sorted(entry["action"] for entry in entries) == ["service.created", "service.deleted"]


def test_the_resource_filters_narrow_the_log_to_one_resource(client: TestClient) -> None:
    wanted = create_service(client, "checkout")
    other = create_service(client, "payments")
    for service_id in (wanted, other):
        response = client.patch(f"/api/services/{service_id}", json={"team": "core"})
        assert response.status_code == 200

    entries = audit_entries(client, resource_type="service", resource_id=wanted)
    assert [entry["action"] for entry in entries] == ["service.updated", "service.created"]
    assert {entry["resource_id"] for entry in entries} == {wanted}
    assert audit_entries(client, resource_type="incident", resource_id=wanted) == []


def test_since_and_until_bound_the_time_of_entries(client: TestClient, clock: Clock) -> None:
    for name in ("at-0", "at-10", "at-20"):
        create_service(client, name)
        clock.advance(10)

    at_10 = (START + timedelta(seconds=10)).isoformat()
    at_20 = (START + timedelta(seconds=20)).isoformat()
    assert names(audit_entries(client, since=at_10)) == ["at-20", "at-10"]
    assert names(audit_entries(client, until=at_10)) == ["at-0"]
    assert names(audit_entries(client, since=at_10, until=at_20)) == ["at-10"]


def test_the_request_id_filter_finds_every_entry_of_one_request(client: TestClient) -> None:
    service_id = create_service(client, "checkout")
    body = {"title": "Checkout down", "severity": "critical", "service_ids": [service_id]}
    response = client.post("/api/incidents", json=body, headers=as_actor("alice", "req-open"))
    assert response.status_code == 201, response.text

    entries = audit_entries(client, request_id="req-open")
    assert sorted(entry["resource_type"] for entry in entries) == [
        "incident",
        "incident_service",
        "timeline_event",
    ]


def test_a_time_without_an_offset_is_refused_naming_the_field(client: TestClient) -> None:
    response = client.get(AUDIT, params={"since": "2030-01-01T12:00:00"})
    assert_problem(response, 422, "since")


def test_an_empty_log_is_an_empty_page(client: TestClient) -> None:
    response = client.get(AUDIT)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
