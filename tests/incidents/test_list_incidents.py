"""Specification of `GET /api/incidents` and `GET /api/services/{id}/incidents`."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.incidents.helpers import Clock, parse_time
from tests.support.api import assert_problem, collect_pages, create_incident, create_service


def listed(client: TestClient, path: str = "/api/incidents", **params: Any) -> list[str]:
    """The titles of one page of incidents, in the order served."""
    response = client.get(path, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


def patch(client: TestClient, incident_id: str, **fields: Any) -> None:
    response = client.patch(f"/api/incidents/{incident_id}", json=fields)
    assert response.status_code == 200, response.text


def test_the_list_is_empty_when_there_are_no_incidents(client: TestClient) -> None:
    response = client.get("/api/incidents")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_incidents_are_listed_newest_first(client: TestClient, clock: Clock) -> None:
    for title in ("first", "second", "third"):
        create_incident(client, title=title)
        clock.advance(1)
    assert listed(client) == ["third", "second", "first"]


def test_listed_incidents_carry_their_services(client: TestClient) -> None:
    service = create_service(client, name="payments")
    create_incident(client, service_ids=[service["id"]])
    [item] = client.get("/api/incidents").json()["items"]
    assert item["services"] == [{"id": service["id"], "name": "payments"}]


def test_a_listed_incident_is_the_incident_its_create_answered(
    client: TestClient, clock: Clock
) -> None:
    # The list is rendered from rows, not through IncidentOut: it must not drift from it.
    payments = create_service(client, name="payments")
    checkout = create_service(client, name="checkout")
    created = create_incident(client, service_ids=[payments["id"], checkout["id"]])
    clock.advance(90)
    updated = client.patch(f"/api/incidents/{created['id']}", json={"status": "investigating"})
    assert updated.status_code == 200, updated.text
    [item] = client.get("/api/incidents").json()["items"]
    assert item == updated.json()
    assert client.get(f"/api/incidents/{created['id']}").json() == item
    assert item["time_to_acknowledge_seconds"] == 90.0
    assert [s["name"] for s in item["services"]] == ["checkout", "payments"]


def test_filtering_by_status(client: TestClient, clock: Clock) -> None:
    create_incident(client, title="still open")
    clock.advance(1)
    investigating = create_incident(client, title="being investigated")
    patch(client, investigating["id"], status="investigating")
    assert listed(client, status="open") == ["still open"]
    assert listed(client, status="investigating") == ["being investigated"]
    assert listed(client, status="resolved") == []


def test_a_repeated_status_matches_any_of_them(client: TestClient, clock: Clock) -> None:
    create_incident(client, title="open one")
    clock.advance(1)
    identified = create_incident(client, title="identified one")
    patch(client, identified["id"], status="identified")
    clock.advance(1)
    resolved = create_incident(client, title="resolved one")
    patch(client, resolved["id"], status="resolved")
    assert listed(client, status=["open", "resolved"]) == ["resolved one", "open one"]


def test_filtering_by_severity(client: TestClient, clock: Clock) -> None:
    create_incident(client, title="critical one", severity="critical")
    clock.advance(1)
    create_incident(client, title="low one", severity="low")
    assert listed(client, severity="low") == ["low one"]
    assert listed(client, severity=["low", "critical"]) == ["low one", "critical one"]


def test_the_seed_query_combines_status_and_severity(client: TestClient, clock: Clock) -> None:
    create_incident(client, title="open critical", severity="critical")
    clock.advance(1)
    create_incident(client, title="open high", severity="high")
    clock.advance(1)
    closed = create_incident(client, title="closed critical", severity="critical")
    patch(client, closed["id"], status="closed")
    assert listed(client, status="open", severity="critical") == ["open critical"]


def test_filtering_by_service_id(client: TestClient, clock: Clock) -> None:
    payments = create_service(client)
    checkout = create_service(client)
    create_incident(client, title="payments only", service_ids=[payments["id"]])
    clock.advance(1)
    create_incident(client, title="both", service_ids=[payments["id"], checkout["id"]])
    clock.advance(1)
    create_incident(client, title="no service")
    assert listed(client, service_id=payments["id"]) == ["both", "payments only"]
    assert listed(client, service_id=checkout["id"]) == ["both"]


def test_created_after_is_inclusive_and_created_before_exclusive(
    client: TestClient, clock: Clock
) -> None:
    create_incident(client, title="at noon")
    one_pm = clock.advance(3600)
    create_incident(client, title="at one")
    clock.advance(3600)
    create_incident(client, title="at two")
    assert listed(client, created_after=one_pm.isoformat()) == ["at two", "at one"]
    assert listed(client, created_before=one_pm.isoformat()) == ["at noon"]


def test_created_after_honours_the_offset_of_the_given_time(
    client: TestClient, clock: Clock
) -> None:
    create_incident(client, title="at noon UTC")
    clock.advance(3600)
    create_incident(client, title="at one UTC")
    # 14:30+02:00 is 12:30 UTC.
    assert listed(client, created_after="2030-01-01T14:30:00+02:00") == ["at one UTC"]


@pytest.mark.parametrize("parameter", ["created_after", "created_before"])
def test_a_time_filter_without_an_offset_is_refused(client: TestClient, parameter: str) -> None:
    response = client.get("/api/incidents", params={parameter: "2030-01-01T12:00:00"})
    assert_problem(response, 422, parameter)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_filter_outside_the_utc_calendar_is_refused(client: TestClient, value: str) -> None:
    response = client.get("/api/incidents", params={"created_after": value})
    assert_problem(response, 422, "created_after")


def test_q_matches_title_description_and_root_cause_ignoring_case(
    client: TestClient, clock: Clock
) -> None:
    create_incident(client, title="Database pool exhausted")
    clock.advance(1)
    create_incident(client, title="Checkout errors", description="The DATABASE refuses")
    clock.advance(1)
    create_incident(client, title="Latency", root_cause="slow database replica")
    clock.advance(1)
    create_incident(client, title="Unrelated", description="cache misses")
    assert listed(client, q="dataBase") == [
        "Latency",
        "Checkout errors",
        "Database pool exhausted",
    ]


def test_q_treats_percent_and_underscore_literally(client: TestClient, clock: Clock) -> None:
    create_incident(client, title="CPU at 100% on api")
    clock.advance(1)
    create_incident(client, title="CPU at 100 on api")
    clock.advance(1)
    create_incident(client, title="queue_depth high")
    clock.advance(1)
    create_incident(client, title="queue-depth high")
    assert listed(client, q="100%") == ["CPU at 100% on api"]
    assert listed(client, q="queue_depth") == ["queue_depth high"]
    assert listed(client, q="%") == ["CPU at 100% on api"]


def test_q_treats_a_backslash_literally(client: TestClient, clock: Clock) -> None:
    create_incident(client, title=r"path C:\temp full")
    clock.advance(1)
    create_incident(client, title="path C:temp full")
    assert listed(client, q="C:\\temp") == [r"path C:\temp full"]


def test_q_with_a_nul_character_is_refused(client: TestClient) -> None:
    assert_problem(client.get("/api/incidents", params={"q": "pool\x00"}), 422, "q")


def test_q_over_200_characters_is_refused(client: TestClient) -> None:
    assert_problem(client.get("/api/incidents", params={"q": "x" * 201}), 422, "q")


def test_filters_narrow_each_other(client: TestClient, clock: Clock) -> None:
    service = create_service(client)
    create_incident(client, title="db down", severity="critical", service_ids=[service["id"]])
    clock.advance(1)
    create_incident(client, title="db slow", severity="low", service_ids=[service["id"]])
    clock.advance(1)
    create_incident(client, title="db gone", severity="critical")
    assert listed(client, q="db", severity="critical", service_id=service["id"]) == ["db down"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sleeping"}, "status.0"),
        ({"status": ["open", "sleeping"]}, "status.1"),
        ({"severity": "sev1"}, "severity.0"),
        ({"service_id": "payments"}, "service_id"),
        ({"created_after": "yesterday"}, "created_after"),
    ],
)
def test_an_invalid_filter_value_is_refused_naming_the_parameter(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    problem = assert_problem(client.get("/api/incidents", params=params), 422, field)
    assert {error["location"] for error in problem["errors"]} == {"query"}


def test_pages_together_list_every_incident_once_in_order(client: TestClient, clock: Clock) -> None:
    for number in range(7):
        create_incident(client, title=f"incident {number}")
        clock.advance(1)
    items, pages = collect_pages(client, "/api/incidents", limit=3)
    assert pages == 3
    assert [item["title"] for item in items] == [f"incident {n}" for n in reversed(range(7))]


def test_pagination_loses_and_repeats_nothing_when_creation_times_tie(
    client: TestClient, clock: Clock
) -> None:
    # Two bursts of incidents created within the same instant.
    for number in range(5):
        create_incident(client, title=f"early {number}")
    clock.advance(1)
    for number in range(6):
        create_incident(client, title=f"late {number}")
    whole = client.get("/api/incidents", params={"limit": 500}).json()["items"]
    for limit in (1, 2, 4):
        items, _ = collect_pages(client, "/api/incidents", limit=limit)
        assert [item["id"] for item in items] == [item["id"] for item in whole]
    assert len({item["id"] for item in whole}) == 11
    times = [parse_time(item["created_at"]) for item in whole]
    assert times == sorted(times, reverse=True)


def test_pagination_keeps_the_filters(client: TestClient, clock: Clock) -> None:
    for number in range(5):
        create_incident(client, title=f"critical {number}", severity="critical")
        create_incident(client, title=f"low {number}", severity="low")
        clock.advance(1)
    items, pages = collect_pages(client, "/api/incidents", limit=2, severity="critical")
    assert pages == 3
    assert [item["title"] for item in items] == [f"critical {n}" for n in reversed(range(5))]


def test_the_last_page_has_no_cursor(client: TestClient) -> None:
    create_incident(client)
    create_incident(client)
    page = client.get("/api/incidents", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def test_the_default_page_holds_50_incidents(client: TestClient, clock: Clock) -> None:
    for _ in range(51):
        create_incident(client)
    page = client.get("/api/incidents").json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="not base64 json"),
        pytest.param(_token(b'{"a": 1}'), id="json object"),
        pytest.param(_token(b'["yesterday", "00000000-0000-4000-8000-000000000001"]'), id="date"),
        pytest.param(_token(b'["2030-01-01T12:00:00+00:00", "not-a-uuid"]'), id="uuid"),
        pytest.param(_token(b'[1, "00000000-0000-4000-8000-000000000001"]'), id="number"),
        pytest.param(_token(b'["2030-01-01T12:00:00+00:00", 5]'), id="number id"),
        pytest.param(_token(b'["2030-01-01T12:00:00+00:00"]'), id="one element"),
    ],
)
def test_an_invalid_cursor_is_refused_naming_cursor(client: TestClient, cursor: str) -> None:
    assert_problem(client.get("/api/incidents", params={"cursor": cursor}), 422, "cursor")


@pytest.mark.parametrize("limit", [0, -1, 501])
def test_a_limit_outside_1_to_500_is_refused(client: TestClient, limit: int) -> None:
    assert_problem(client.get("/api/incidents", params={"limit": limit}), 422, "limit")


def test_a_limit_of_500_is_accepted(client: TestClient) -> None:
    assert client.get("/api/incidents", params={"limit": 500}).status_code == 200


def test_a_service_lists_the_incidents_that_affect_it(client: TestClient, clock: Clock) -> None:
    payments = create_service(client)
    checkout = create_service(client)
    create_incident(client, title="payments down", service_ids=[payments["id"]])
    clock.advance(1)
    create_incident(client, title="checkout down", service_ids=[checkout["id"]])
    clock.advance(1)
    create_incident(client, title="both down", service_ids=[payments["id"], checkout["id"]])
    path = f"/api/services/{payments['id']}/incidents"
    assert listed(client, path) == ["both down", "payments down"]


def test_a_service_incident_list_filters_by_status_and_severity(
    client: TestClient, clock: Clock
) -> None:
    service = create_service(client)
    create_incident(client, title="open low", severity="low", service_ids=[service["id"]])
    clock.advance(1)
    resolved = create_incident(client, title="resolved", service_ids=[service["id"]])
    patch(client, resolved["id"], status="resolved")
    path = f"/api/services/{service['id']}/incidents"
    assert listed(client, path, status="open") == ["open low"]
    assert listed(client, path, severity="critical") == ["resolved"]


def test_the_incidents_of_an_unknown_service_are_404(client: TestClient) -> None:
    response = client.get("/api/services/00000000-0000-4000-8000-00000000dead/incidents")
    assert_problem(response, 404)
