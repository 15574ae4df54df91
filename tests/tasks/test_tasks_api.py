"""Specification of `/api/incidents/{id}/tasks`, an incident's action items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.db.models import IncidentTask
from tests.incidents.helpers import Clock, count_rows, parse_time
from tests.support.api import assert_problem, collect_pages, create_incident

UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"


def tasks_path(incident_id: str) -> str:
    return f"/api/incidents/{incident_id}/tasks"


def create_task(client: TestClient, incident_id: str, **fields: Any) -> dict[str, Any]:
    """POST a task with a default title, asserting that it worked."""
    response = client.post(tasks_path(incident_id), json={"title": "Roll back v2", **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def patch_task(client: TestClient, task: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """PATCH the task, asserting that it worked."""
    response = client.patch(f"{tasks_path(task['incident_id'])}/{task['id']}", json=fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_task(client: TestClient, task: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"{tasks_path(task['incident_id'])}/{task['id']}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def titles(client: TestClient, incident_id: str, **params: Any) -> list[str]:
    response = client.get(tasks_path(incident_id), params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["items"]]


# --- creating ----------------------------------------------------------------------------


def test_creating_a_task_answers_201_with_location(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.post(
        tasks_path(incident["id"]),
        json={"title": "Add connection pool alert", "description": "Alert at 80% of the pool"},
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == f"{tasks_path(incident['id'])}/{task['id']}"
    assert task["incident_id"] == incident["id"]
    assert task["title"] == "Add connection pool alert"
    assert task["description"] == "Alert at 80% of the pool"


def test_the_location_of_a_new_task_answers_the_same_task(client: TestClient) -> None:
    incident = create_incident(client)
    created = client.post(tasks_path(incident["id"]), json={"title": "Roll back"})
    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


def test_a_new_task_is_open_unassigned_and_without_due_date(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    assert task["status"] == "open"
    assert task["description"] is None
    assert task["assignee"] is None
    assert task["due_at"] is None
    assert task["completed_at"] is None
    assert parse_time(task["created_at"]) == clock.now == parse_time(task["updated_at"])


def test_a_task_created_done_is_completed_at_creation(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], status="done")
    assert task["status"] == "done"
    assert parse_time(task["completed_at"]) == clock.now


def test_assignee_and_due_date_may_be_given_at_creation(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], assignee="alice", due_at="2030-02-01T09:00:00Z")
    assert task["assignee"] == "alice"
    assert parse_time(task["due_at"]) == datetime(2030, 2, 1, 9, 0, tzinfo=UTC)


def test_the_due_date_is_answered_in_utc(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], due_at="2030-02-01T11:00:00+02:00")
    due = parse_time(get_task(client, task)["due_at"])
    assert due == datetime(2030, 2, 1, 9, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_creating_a_task_adds_nothing_to_the_timeline(client: TestClient) -> None:
    incident = create_incident(client)
    create_task(client, incident["id"])
    events = client.get(f"/api/incidents/{incident['id']}/timeline").json()["items"]
    assert [event["type"] for event in events] == ["incident_created"]


INVALID_TASKS: list[tuple[str, dict[str, Any], str]] = [
    ("missing title", {}, "title"),
    ("null title", {"title": None}, "title"),
    ("blank title", {"title": " "}, "title"),
    ("title over 500 characters", {"title": "x" * 501}, "title"),
    ("NUL in title", {"title": "a\x00"}, "title"),
    ("unknown status", {"title": "t", "status": "in_progress"}, "status"),
    ("assignee over 200 characters", {"title": "t", "assignee": "a" * 201}, "assignee"),
    ("naive due_at", {"title": "t", "due_at": "2030-02-01T09:00:00"}, "due_at"),
    ("due_at not a time", {"title": "t", "due_at": "tomorrow"}, "due_at"),
    ("due_at outside UTC years", {"title": "t", "due_at": "0001-01-01T00:00:00+01:00"}, "due_at"),
    ("extra field", {"title": "t", "priority": 1}, "priority"),
    ("completed_at is not writable", {"title": "t", "completed_at": None}, "completed_at"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param(body, field, id=name) for name, body, field in INVALID_TASKS],
)
def test_an_invalid_task_is_refused_naming_the_field_and_nothing_is_created(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    incident = create_incident(client)
    assert_problem(client.post(tasks_path(incident["id"]), json=body), 422, field)
    assert count_rows(client, IncidentTask) == 0


def test_a_task_cannot_be_added_to_an_unknown_incident(client: TestClient) -> None:
    assert_problem(client.post(tasks_path(UNKNOWN_ID), json={"title": "Roll back"}), 404)
    assert count_rows(client, IncidentTask) == 0


# --- updating ----------------------------------------------------------------------------


def test_marking_a_task_done_records_when(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    done_at = clock.advance(300)
    body = patch_task(client, task, status="done")
    assert body["status"] == "done"
    assert parse_time(body["completed_at"]) == done_at
    assert get_task(client, task) == body


def test_marking_a_done_task_done_again_keeps_its_completion_time(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    done = patch_task(client, task, status="done")
    clock.advance(60)
    again = patch_task(client, task, status="done")
    assert again["completed_at"] == done["completed_at"]


def test_reopening_a_task_clears_its_completion_time(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], status="done")
    body = patch_task(client, task, status="open")
    assert body["status"] == "open"
    assert body["completed_at"] is None
    assert get_task(client, task)["completed_at"] is None


def test_assignee_and_due_date_can_be_set_and_cleared_with_null(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    assigned = patch_task(client, task, assignee="bob", due_at="2030-03-01T00:00:00Z")
    assert assigned["assignee"] == "bob"
    assert parse_time(assigned["due_at"]) == datetime(2030, 3, 1, tzinfo=UTC)
    cleared = patch_task(client, task, assignee=None, due_at=None)
    assert cleared["assignee"] is None
    assert cleared["due_at"] is None
    assert get_task(client, task) == cleared


def test_the_description_can_be_cleared_with_null(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], description="details")
    assert patch_task(client, task, description=None)["description"] is None


def test_a_patch_leaves_the_fields_it_does_not_name(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], description="d", assignee="carol")
    body = patch_task(client, task, title="Roll forward")
    assert body["title"] == "Roll forward"
    assert (body["description"], body["assignee"], body["status"]) == ("d", "carol", "open")


def test_a_change_moves_updated_at(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    body = patch_task(client, task, title="Renamed")
    assert parse_time(body["updated_at"]) > parse_time(task["updated_at"])
    assert body["created_at"] == task["created_at"]


def test_a_patch_that_changes_nothing_leaves_updated_at(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"], assignee="dave")
    body = patch_task(client, task, title=task["title"], assignee="dave", status="open")
    assert body == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"title": None}, "title", id="null title"),
        pytest.param({"status": None}, "status", id="null status"),
        pytest.param({"status": "closed"}, "status", id="unknown status"),
        pytest.param({"title": ""}, "title", id="empty title"),
        pytest.param({"due_at": "2030-01-01"}, "due_at", id="date without time"),
        pytest.param({"incident_id": UNKNOWN_ID}, "incident_id", id="moving to another incident"),
    ],
)
def test_an_invalid_patch_is_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    response = client.patch(f"{tasks_path(incident['id'])}/{task['id']}", json=body)
    assert_problem(response, 422, field)
    assert get_task(client, task) == task


# --- listing -----------------------------------------------------------------------------


def test_tasks_are_listed_in_the_order_they_were_added(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    for title in ("first", "second", "third"):
        create_task(client, incident["id"], title=title)
        clock.advance(1)
    assert titles(client, incident["id"]) == ["first", "second", "third"]


def test_an_incident_without_tasks_lists_none(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(tasks_path(incident["id"]))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_filtering_tasks_by_status(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    create_task(client, incident["id"], title="todo")
    clock.advance(1)
    create_task(client, incident["id"], title="finished", status="done")
    clock.advance(1)
    create_task(client, incident["id"], title="todo too")
    assert titles(client, incident["id"], status="open") == ["todo", "todo too"]
    assert titles(client, incident["id"], status="done") == ["finished"]


def test_an_unknown_status_filter_is_refused(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(tasks_path(incident["id"]), params={"status": "blocked"})
    assert_problem(response, 422, "status")


def test_an_incident_lists_only_its_own_tasks(client: TestClient) -> None:
    first = create_incident(client)
    second = create_incident(client)
    create_task(client, first["id"], title="first's task")
    create_task(client, second["id"], title="second's task")
    assert titles(client, first["id"]) == ["first's task"]


def test_pagination_loses_and_repeats_nothing_when_creation_times_tie(
    client: TestClient, clock: Clock
) -> None:
    incident = create_incident(client)
    for number in range(4):
        create_task(client, incident["id"], title=f"early {number}")
    clock.advance(1)
    for number in range(3):
        create_task(client, incident["id"], title=f"late {number}")
    whole = client.get(tasks_path(incident["id"]), params={"limit": 500}).json()["items"]
    assert len({task["id"] for task in whole}) == 7
    assert [task["title"][:4] for task in whole] == ["earl"] * 4 + ["late"] * 3
    for limit in (1, 2, 3):
        items, _ = collect_pages(client, tasks_path(incident["id"]), limit=limit)
        assert [task["id"] for task in items] == [task["id"] for task in whole]


def test_pagination_keeps_the_status_filter(client: TestClient, clock: Clock) -> None:
    incident = create_incident(client)
    for number in range(5):
        create_task(client, incident["id"], title=f"open {number}")
        create_task(client, incident["id"], title=f"done {number}", status="done")
        clock.advance(1)
    items, pages = collect_pages(client, tasks_path(incident["id"]), limit=2, status="done")
    assert pages == 3
    assert [task["title"] for task in items] == [f"done {n}" for n in range(5)]


def test_an_invalid_cursor_is_refused(client: TestClient) -> None:
    incident = create_incident(client)
    response = client.get(tasks_path(incident["id"]), params={"cursor": "%%%"})
    assert_problem(response, 422, "cursor")


def test_the_tasks_of_an_unknown_incident_are_404(client: TestClient) -> None:
    assert_problem(client.get(tasks_path(UNKNOWN_ID)), 404)


# --- deleting and ownership --------------------------------------------------------------


def test_deleting_a_task_answers_204_and_it_is_gone(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    path = f"{tasks_path(incident['id'])}/{task['id']}"
    response = client.delete(path)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(path), 404)
    assert_problem(client.delete(path), 404)
    assert titles(client, incident["id"]) == []


def test_deleting_one_task_keeps_the_others(client: TestClient) -> None:
    incident = create_incident(client)
    doomed = create_task(client, incident["id"], title="doomed")
    create_task(client, incident["id"], title="kept")
    assert client.delete(f"{tasks_path(incident['id'])}/{doomed['id']}").status_code == 204
    assert titles(client, incident["id"]) == ["kept"]


def test_an_unknown_task_is_404(client: TestClient) -> None:
    incident = create_incident(client)
    path = f"{tasks_path(incident['id'])}/{UNKNOWN_ID}"
    assert_problem(client.get(path), 404)
    assert_problem(client.patch(path, json={"status": "done"}), 404)
    assert_problem(client.delete(path), 404)


def test_a_task_is_not_reachable_through_another_incident(client: TestClient) -> None:
    owner = create_incident(client)
    other = create_incident(client)
    task = create_task(client, owner["id"])
    path = f"{tasks_path(other['id'])}/{task['id']}"
    assert_problem(client.get(path), 404)
    assert_problem(client.patch(path, json={"status": "done"}), 404)
    assert_problem(client.delete(path), 404)
    assert get_task(client, task) == task


def test_a_task_is_not_reachable_through_an_unknown_incident(client: TestClient) -> None:
    incident = create_incident(client)
    task = create_task(client, incident["id"])
    path = f"{tasks_path(UNKNOWN_ID)}/{task['id']}"
    assert_problem(client.get(path), 404)
    assert_problem(client.patch(path, json={"title": "hijacked"}), 404)
    assert_problem(client.delete(path), 404)
    assert get_task(client, task) == task
