"""Specification of `/api/incidents/{id}/timeline`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.db.models import TimelineEvent
from tests.incidents.helpers import Clock, count_rows, parse_time, timeline_events
from tests.support.api import assert_problem, collect_pages, create_incident

UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"
SEED_EVENT = {
    "type": "metric_anomaly",
    "source": "prometheus",
    "title": "Error rate spike detected",
    "description": "Error rate increased to 15%",
}


def timeline_path(incident_id: str) -> str:
    return f"/api/incidents/{incident_id}/timeline"


def add_event(client: TestClient, incident_id: str, **fields: Any) -> dict[str, Any]:
    """POST a timeline event with a default type and title, asserting that it worked."""
    body = {"type": "note", "title": "A note", **fields}
    response = client.post(timeline_path(incident_id), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def titles(client: TestClient, incident_id: str, **params: Any) -> list[str]:
    return [event["title"] for event in timeline_events(client, incident_id, **params)]


# --- adding events -----------------------------------------------------------------------


def test_adding_the_seed_event_answers_201_with_location(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.post(timeline_path(incident["id"]), json=SEED_EVENT)
    assert response.status_code == 201, response.text
    event = response.json()
    assert response.headers["location"] == f"{timeline_path(incident['id'])}/{event['id']}"
    assert event["incident_id"] == incident["id"]
    assert event["type"] == "metric_anomaly"
    assert event["source"] == "prometheus"
    assert event["title"] == "Error rate spike detected"
    assert event["description"] == "Error rate increased to 15%"
    assert event["metadata"] is None


def test_the_location_of_a_new_event_answers_the_same_event(client: TestClient) -> None:
    incident = create_incident(client)
    created = client.post(timeline_path(incident["id"]), json=SEED_EVENT)
    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


def test_an_added_event_appears_on_the_timeline(client: TestClient) -> None:
    incident = create_incident(client)
    event = add_event(client, incident["id"], **SEED_EVENT)
    events = timeline_events(client, incident["id"])
    assert [e["type"] for e in events] == ["incident_created", "metric_anomaly"]
    assert events[-1] == event


def test_the_source_defaults_to_manual(client: TestClient) -> None:
    incident = create_incident(client)
    assert add_event(client, incident["id"])["source"] == "manual"


def test_the_actor_is_taken_from_the_x_actor_header(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.post(
        timeline_path(incident["id"]), json=SEED_EVENT, headers={"X-Actor": "grafana-bot"}
    )
    assert response.status_code == 201
    assert response.json()["actor"] == "grafana-bot"


def test_the_actor_defaults_to_api(client: TestClient) -> None:
    incident = create_incident(client)
    assert add_event(client, incident["id"])["actor"] == "api"


def test_occurred_at_defaults_to_now(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    now = clock.advance(30)
    event = add_event(client, incident["id"])
    assert parse_time(event["occurred_at"]) == now


def test_an_explicit_occurred_at_is_kept_and_answered_in_utc(client: TestClient) -> None:
    incident = create_incident(client)
    event = add_event(client, incident["id"], occurred_at="2030-01-01T14:30:00.250+02:00")
    occurred = parse_time(event["occurred_at"])
    assert occurred == datetime(2030, 1, 1, 12, 30, 0, 250_000, tzinfo=UTC)
    assert occurred.utcoffset() == timedelta(0)
    stored = client.get(f"{timeline_path(incident['id'])}/{event['id']}").json()
    assert parse_time(stored["occurred_at"]) == occurred


def test_text_fields_are_trimmed(client: TestClient) -> None:
    incident = create_incident(client)
    event = add_event(client, incident["id"], type=" deploy ", source=" argo ", title=" v2 ")
    assert (event["type"], event["source"], event["title"]) == ("deploy", "argo", "v2")


@pytest.mark.parametrize("type_", ["note", "k8s.pod_restart", "deploy2", "a" * 64])
def test_event_types_are_lower_case_words_joined_by_underscore_or_dot(
    client: TestClient, type_: str
) -> None:
    incident = create_incident(client)
    assert add_event(client, incident["id"], type=type_)["type"] == type_


METADATA_SAMPLES: list[dict[str, Any]] = [
    {},
    {"query": 'rate(http_requests_total{code=~"5.."}[5m])', "value": 0.15, "threshold": 0.05},
    {"labels": {"pod": "payments-7d9", "namespace": "prod"}, "count": 3, "firing": True},
    {"samples": [1, 2.5, -3, None, "x", [], {}], "unicode": "délai ⏱ 遅延", "empty": ""},
    {"big": 9_007_199_254_740_993, "tiny": 1e-300, "negative": -0.0},
]


@pytest.mark.parametrize("metadata", METADATA_SAMPLES)
def test_metadata_round_trips_as_json(client: TestClient, metadata: dict[str, Any]) -> None:
    incident = create_incident(client)
    event = add_event(client, incident["id"], metadata=metadata)
    assert event["metadata"] == metadata
    stored = client.get(f"{timeline_path(incident['id'])}/{event['id']}").json()
    assert stored["metadata"] == metadata
    [listed] = [e for e in timeline_events(client, incident["id"]) if e["id"] == event["id"]]
    assert listed["metadata"] == metadata


def test_metadata_of_32_levels_is_accepted(client: TestClient) -> None:
    incident = create_incident(client)
    metadata: dict[str, Any] = {"leaf": 1}
    for _ in range(30):
        metadata = {"nested": metadata}
    assert add_event(client, incident["id"], metadata=metadata)["metadata"] == metadata


def nested(levels: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for _ in range(levels - 1):
        metadata = {"n": metadata}
    return metadata


INVALID_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("missing type", {"title": "t"}, "type"),
    ("missing title", {"type": "note"}, "title"),
    ("blank title", {"type": "note", "title": "  "}, "title"),
    ("NUL in title", {"type": "note", "title": "spike\x00"}, "title"),
    ("NUL in description", {"type": "note", "title": "t", "description": "\x00"}, "description"),
    ("NUL in source", {"type": "note", "title": "t", "source": "prom\x00"}, "source"),
    ("upper-case type", {"type": "Metric_Anomaly", "title": "t"}, "type"),
    ("type with a space", {"type": "metric anomaly", "title": "t"}, "type"),
    ("type starting with a digit", {"type": "5xx", "title": "t"}, "type"),
    ("type with a dash", {"type": "metric-anomaly", "title": "t"}, "type"),
    ("type over 64 characters", {"type": "a" * 65, "title": "t"}, "type"),
    ("empty type", {"type": "", "title": "t"}, "type"),
    (
        "naive occurred_at",
        {"type": "note", "title": "t", "occurred_at": "2030-01-01T12:00:00"},
        "occurred_at",
    ),
    (
        "occurred_at not a time",
        {"type": "note", "title": "t", "occurred_at": "soon"},
        "occurred_at",
    ),
    (
        "occurred_at before year 1 in UTC",
        {"type": "note", "title": "t", "occurred_at": "0001-01-01T00:00:00+01:00"},
        "occurred_at",
    ),
    (
        "occurred_at after year 9999 in UTC",
        {"type": "note", "title": "t", "occurred_at": "9999-12-31T23:30:00-01:00"},
        "occurred_at",
    ),
    ("metadata a list", {"type": "note", "title": "t", "metadata": [1, 2]}, "metadata"),
    ("metadata a string", {"type": "note", "title": "t", "metadata": "x"}, "metadata"),
    (
        "metadata over 64 KiB",
        {"type": "note", "title": "t", "metadata": {"blob": "x" * (64 * 1024)}},
        "metadata",
    ),
    ("metadata over 32 levels", {"type": "note", "title": "t", "metadata": nested(33)}, "metadata"),
    (
        "metadata 300 levels deep",
        {"type": "note", "title": "t", "metadata": nested(300)},
        "metadata",
    ),
    (
        "metadata number beyond 64 bits",
        {"type": "note", "title": "t", "metadata": {"n": 2**70}},
        "metadata",
    ),
    (
        "NUL in a metadata value",
        {"type": "note", "title": "t", "metadata": {"k": "\x00"}},
        "metadata",
    ),
    ("NUL in a metadata key", {"type": "note", "title": "t", "metadata": {"\x00": 1}}, "metadata"),
    ("extra field", {"type": "note", "title": "t", "severity": "high"}, "severity"),
    ("actor is not writable", {"type": "note", "title": "t", "actor": "mallory"}, "actor"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param(body, field, id=name) for name, body, field in INVALID_EVENTS],
)
def test_an_invalid_event_is_refused_naming_the_field_and_nothing_is_added(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    incident = create_incident(client)
    assert_problem(client.post(timeline_path(incident["id"]), json=body), 422, field)
    assert count_rows(client, TimelineEvent) == 1  # only incident_created


def test_adding_to_an_unknown_incident_is_404_and_adds_nothing(client: TestClient) -> None:
    assert_problem(client.post(timeline_path(UNKNOWN_ID), json=SEED_EVENT), 404)
    assert count_rows(client, TimelineEvent) == 0


# --- reading the timeline ----------------------------------------------------------------


def test_a_new_incident_has_only_its_created_event(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(timeline_path(incident["id"]))
    assert response.status_code == 200
    page = response.json()
    assert [event["type"] for event in page["items"]] == ["incident_created"]
    assert page["next_cursor"] is None


def iso(base: datetime, seconds: float) -> str:
    """`base` moved by `seconds`, as RFC 3339."""
    return (base + timedelta(seconds=seconds)).isoformat()


def test_events_are_listed_in_the_order_they_occurred_not_the_order_added(
    client: TestClient,
) -> None:
    incident = create_incident(client)
    created_at = parse_time(incident["created_at"])
    add_event(client, incident["id"], title="later", occurred_at=iso(created_at, 120))
    add_event(client, incident["id"], title="earlier", occurred_at=iso(created_at, 60))
    add_event(client, incident["id"], title="before", occurred_at=iso(created_at, -60))
    assert titles(client, incident["id"]) == [
        "before",
        "Incident opened with severity critical",
        "earlier",
        "later",
    ]


def test_a_timeline_shows_only_its_own_incident(client: TestClient) -> None:
    first = create_incident(client)
    second = create_incident(client)
    add_event(client, first["id"], title="first's note")
    add_event(client, second["id"], title="second's note")
    assert "second's note" not in titles(client, first["id"])
    assert {e["incident_id"] for e in timeline_events(client, first["id"])} == {first["id"]}


def test_filtering_by_type(client: TestClient) -> None:
    incident = create_incident(client)
    add_event(client, incident["id"], type="deploy", title="v1")
    add_event(client, incident["id"], type="note", title="looking")
    add_event(client, incident["id"], type="deploy", title="v2")
    assert titles(client, incident["id"], type="deploy") == ["v1", "v2"]
    assert titles(client, incident["id"], type="page") == []


def test_a_repeated_type_matches_any_of_them(client: TestClient) -> None:
    incident = create_incident(client)
    add_event(client, incident["id"], type="deploy", title="v1")
    add_event(client, incident["id"], type="note", title="looking")
    add_event(client, incident["id"], type="page", title="paged")
    assert titles(client, incident["id"], type=["deploy", "page"]) == ["v1", "paged"]


@pytest.mark.parametrize("value", ["Deploy", "a\x00b", "a" * 65])
def test_a_type_filter_that_is_not_an_event_type_is_refused(client: TestClient, value: str) -> None:
    incident = create_incident(client)
    response = client.get(timeline_path(incident["id"]), params={"type": value})
    assert_problem(response, 422, "type.0")


def test_pages_together_list_every_event_once_in_order(client: TestClient) -> None:
    incident = create_incident(client)
    created_at = parse_time(incident["created_at"])
    for number in range(6):
        add_event(
            client, incident["id"], title=f"event {number}", occurred_at=iso(created_at, number + 1)
        )
    items, pages = collect_pages(client, timeline_path(incident["id"]), limit=3)
    assert pages == 3
    assert [e["title"] for e in items][1:] == [f"event {n}" for n in range(6)]


def test_pagination_loses_and_repeats_nothing_when_events_occur_at_the_same_time(
    client: TestClient,
) -> None:
    incident = create_incident(client)
    same_time = iso(parse_time(incident["created_at"]), 10)
    for number in range(7):
        add_event(client, incident["id"], title=f"event {number}", occurred_at=same_time)
    whole = timeline_events(client, incident["id"])
    assert len(whole) == 8
    for limit in (1, 2, 3):
        items, _ = collect_pages(client, timeline_path(incident["id"]), limit=limit)
        assert [e["id"] for e in items] == [e["id"] for e in whole]


def test_pagination_keeps_the_type_filter(client: TestClient) -> None:
    incident = create_incident(client)
    for number in range(5):
        add_event(client, incident["id"], type="deploy", title=f"deploy {number}")
        add_event(client, incident["id"], type="note", title=f"note {number}")
    items, pages = collect_pages(client, timeline_path(incident["id"]), limit=2, type="deploy")
    assert pages == 3
    assert [e["title"] for e in items] == [f"deploy {n}" for n in range(5)]


def test_an_invalid_cursor_is_refused(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(timeline_path(incident["id"]), params={"cursor": "garbage"})
    assert_problem(response, 422, "cursor")


def test_a_limit_over_500_is_refused(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(timeline_path(incident["id"]), params={"limit": 501})
    assert_problem(response, 422, "limit")


def test_the_timeline_of_an_unknown_incident_is_404(client: TestClient) -> None:
    assert_problem(client.get(timeline_path(UNKNOWN_ID)), 404)


def test_an_unknown_event_is_404(client: TestClient) -> None:
    incident = create_incident(client)
    assert_problem(client.get(f"{timeline_path(incident['id'])}/{UNKNOWN_ID}"), 404)


def test_an_event_is_not_found_under_another_incident(client: TestClient) -> None:
    owner = create_incident(client)
    other = create_incident(client)
    event = add_event(client, owner["id"])
    assert_problem(client.get(f"{timeline_path(other['id'])}/{event['id']}"), 404)


def test_timeline_events_cannot_be_changed_or_deleted(client: TestClient) -> None:
    incident = create_incident(client)
    event = add_event(client, incident["id"])
    path = f"{timeline_path(incident['id'])}/{event['id']}"
    assert_problem(client.patch(path, json={"title": "rewritten"}), 405)
    assert_problem(client.delete(path), 405)
    assert client.get(path).json() == event


def test_a_listed_event_is_exactly_the_event_as_answered_on_its_own(client: TestClient) -> None:
    # The list is rendered from rows, the single event through TimelineEventOut: one shape.
    incident = create_incident(client)
    added = [
        add_event(client, incident["id"], **SEED_EVENT, metadata={"rate": 0.15, "labels": ["a"]}),
        add_event(client, incident["id"], occurred_at="2026-01-02T03:04:05.123456+02:00"),
    ]
    listed = {event["id"]: event for event in timeline_events(client, incident["id"])}
    for event in added:
        alone = client.get(f"{timeline_path(incident['id'])}/{event['id']}").json()
        assert listed[event["id"]] == alone == event
