"""Specification of conditional writes over HTTP: `ETag` out, `If-Match` in, 412 when stale.

RFC 9110: 8.8.3 (ETag), 13.1.1 (If-Match, strong comparison), 13.2.1 (a precondition is
not evaluated when the answer without it would be an error), 15.5.13 (412).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm.exc import StaleDataError

from reliability_studio.api.problems import install_problem_handlers
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.conftest import QUIET_ENGINE
from tests.incidents.helpers import events_of_type
from tests.support.api import assert_problem, create_incident


def _incident(client: TestClient) -> tuple[str, dict[str, Any]]:
    incident = create_incident(client)
    return f"/api/incidents/{incident['id']}", incident


def test_a_new_incident_comes_with_its_etag_and_get_repeats_it(client: TestClient) -> None:
    response = client.post("/api/incidents", json={"title": "Checkout down"})
    assert response.status_code == 201
    assert response.json()["version"] == 1
    assert response.headers["etag"] == '"1"'

    got = client.get(response.headers["location"])
    assert got.headers["etag"] == '"1"'
    assert got.json()["version"] == 1


def test_a_matching_if_match_applies_the_change_and_answers_the_new_etag(
    client: TestClient,
) -> None:
    path, _ = _incident(client)
    response = client.patch(path, json={"title": "Renamed"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json()["version"] == 2
    assert client.get(path).headers["etag"] == '"2"'


def test_a_stale_if_match_is_refused_with_412_naming_the_current_version_and_changes_nothing(
    client: TestClient,
) -> None:
    path, _ = _incident(client)
    assert client.patch(path, json={"status": "investigating"}).status_code == 200
    before = client.get(path).json()

    # A responder who read version 1 tries to move the incident on.
    response = client.patch(path, json={"status": "resolved"}, headers={"If-Match": '"1"'})

    problem = assert_problem(response, 412)
    assert problem["current_version"] == 2
    assert problem["current_etag"] == '"2"'
    assert "version 2" in problem["detail"]
    assert client.get(path).json() == before
    # Not even the automatic timeline event of the refused change was written.
    changes = events_of_type(client, path.rsplit("/", 1)[1], "status_change")
    assert [event["metadata"]["to"] for event in changes] == ["investigating"]


def test_without_if_match_the_last_write_wins(client: TestClient) -> None:
    path, _ = _incident(client)
    # Two responders both read version 1, and both write without a condition.
    first = client.patch(path, json={"root_cause": "disk full"})
    second = client.patch(path, json={"root_cause": "bad deploy"})
    assert (first.status_code, second.status_code) == (200, 200)
    current = client.get(path)
    assert current.json()["root_cause"] == "bad deploy"
    assert current.json()["version"] == 3
    assert current.headers["etag"] == '"3"'


STAR_LISTS_AND_WEAK_TAGS = [
    ("*", 200),  # any current version
    ('"7", "1"', 200),  # any of a list
    ('"7", "8"', 412),
    ('W/"1"', 412),  # If-Match compares strongly: a weak tag never matches
]


def test_star_lists_and_weak_tags(client: TestClient) -> None:
    for if_match, status in STAR_LISTS_AND_WEAK_TAGS:  # one app for all: they take a while
        path, _ = _incident(client)
        response = client.patch(path, json={"title": "New"}, headers={"If-Match": if_match})
        assert response.status_code == status, (if_match, response.text)
        title = client.get(path).json()["title"]
        assert title == ("New" if status == 200 else "Payment Service Down"), if_match


def test_a_malformed_if_match_is_400_naming_the_header_and_changes_nothing(
    client: TestClient,
) -> None:
    path, incident = _incident(client)
    for if_match in ["1", '"1', '"1" "2"', '*, "1"', "", "W/1"]:
        response = client.patch(path, json={"title": "Never"}, headers={"If-Match": if_match})
        problem = assert_problem(response, 400, "If-Match")
        assert problem["errors"][0]["location"] == "header"
    assert client.get(path).json() == incident


def test_a_resource_that_does_not_exist_is_404_whatever_if_match_says(
    client: TestClient,
) -> None:
    missing = "/api/incidents/00000000-0000-4000-8000-00000000dead"
    assert_problem(client.patch(missing, json={"title": "x"}, headers={"If-Match": '"1"'}), 404)
    assert_problem(client.patch(missing, json={"title": "x"}, headers={"If-Match": "*"}), 404)


def test_a_stale_delete_is_412_and_the_resource_is_still_there(client: TestClient) -> None:
    _, incident = _incident(client)
    tasks = f"/api/incidents/{incident['id']}/tasks"
    created = client.post(tasks, json={"title": "Raise the pool size"})
    task_path = created.headers["location"]
    assert created.headers["etag"] == '"1"'
    assert client.patch(task_path, json={"assignee": "alice"}).headers["etag"] == '"2"'

    assert_problem(client.delete(task_path, headers={"If-Match": '"1"'}), 412)
    assert client.get(task_path).status_code == 200

    assert client.delete(task_path, headers={"If-Match": '"2"'}).status_code == 204
    assert client.get(task_path).status_code == 404


def test_a_change_that_changes_nothing_keeps_the_version(client: TestClient) -> None:
    path, _ = _incident(client)
    response = client.patch(
        path, json={"title": "Payment Service Down"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'


def test_the_version_is_in_every_list_item(client: TestClient) -> None:
    path, _ = _incident(client)
    client.patch(path, json={"title": "Twice"})
    [item] = client.get("/api/incidents").json()["items"]
    assert item["version"] == 2


def test_openapi_documents_if_match_the_etag_header_and_412() -> None:
    # The document does not depend on the database: one app, never started, is enough.
    document = create_app(Settings(**QUIET_ENGINE)).openapi()
    patch = document["paths"]["/api/incidents/{incident_id}"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"] if p["in"] == "header"}
    assert "412" in patch["responses"]
    assert "ETag" in patch["responses"]["200"]["headers"]
    assert "schema" in patch["responses"]["200"]["content"]["application/json"]
    delete = document["paths"]["/api/incidents/{incident_id}/tasks/{task_id}"]["delete"]
    assert "412" in delete["responses"]
    created = document["paths"]["/api/incidents"]["post"]["responses"]["201"]
    assert "ETag" in created["headers"]


def test_a_conflict_found_only_at_the_write_is_a_conflict_not_a_server_error() -> None:
    """Should a writer ever skip the lock, the mapper's version check still stops it; the
    API then answers 409 (412 if the request had a precondition), never 500."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.patch("/thing")
    async def thing() -> None:
        raise StaleDataError("UPDATE statement on table 'things' expected to update 1 row")

    with TestClient(app) as plain:
        assert_problem(plain.patch("/thing"), 409)
        assert_problem(plain.patch("/thing", headers={"If-Match": '"1"'}), 412)
