"""Specification of `GET /api/services/{id}/incidents`."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.support.api import assert_problem, collect_pages, create_incident, create_service


def incident_ids(client: TestClient, service_id: str, **params: str | int) -> set[str]:
    """The ids of the incidents listed for the service (first page)."""
    response = client.get(f"/api/services/{service_id}/incidents", params=params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_lists_only_the_incidents_that_link_the_service(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    search = create_service(client, name="search")
    only_payments = create_incident(client, title="Payments down", service_ids=[payments["id"]])
    both = create_incident(client, title="Both down", service_ids=[payments["id"], search["id"]])
    only_search = create_incident(client, title="Search slow", service_ids=[search["id"]])
    create_incident(client, title="No service")
    assert incident_ids(client, payments["id"]) == {only_payments["id"], both["id"]}
    assert incident_ids(client, search["id"]) == {both["id"], only_search["id"]}


def test_listed_incidents_name_the_service(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    create_incident(client, service_ids=[payments["id"]])
    items = client.get(f"/api/services/{payments['id']}/incidents").json()["items"]
    assert len(items) == 1
    assert items[0]["service_ids"] == [payments["id"]]
    assert items[0]["services"] == [{"id": payments["id"], "name": "payments"}]


def test_service_without_incidents_lists_none(client: TestClient) -> None:
    lonely = create_service(client, name="lonely")
    other = create_service(client, name="other")
    create_incident(client, service_ids=[other["id"]])
    response = client.get(f"/api/services/{lonely['id']}/incidents")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_incident_unlinked_from_the_service_leaves_its_list(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    incident = create_incident(client, service_ids=[payments["id"]])
    client.patch(f"/api/incidents/{incident['id']}", json={"service_ids": []})
    assert incident_ids(client, payments["id"]) == set()


def test_service_incidents_paginate_without_duplicates_or_omissions(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    other = create_service(client, name="other")
    created = {create_incident(client, service_ids=[payments["id"]])["id"] for _ in range(5)}
    create_incident(client, service_ids=[other["id"]])
    items, pages = collect_pages(client, f"/api/services/{payments['id']}/incidents", limit=2)
    assert len(items) == 5  # no duplicates
    assert {item["id"] for item in items} == created
    assert pages == 3


def test_service_incidents_filter_by_status(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    open_one = create_incident(client, service_ids=[payments["id"]])
    investigating = create_incident(client, service_ids=[payments["id"]])
    response = client.patch(
        f"/api/incidents/{investigating['id']}", json={"status": "investigating"}
    )
    assert response.status_code == 200, response.text
    assert incident_ids(client, payments["id"], status="open") == {open_one["id"]}
    assert incident_ids(client, payments["id"], status="investigating") == {investigating["id"]}


def test_incidents_of_an_unknown_service_get_404(client: TestClient) -> None:
    create_incident(client)
    assert_problem(client.get(f"/api/services/{uuid.uuid4()}/incidents"), 404)


def test_incidents_of_a_deleted_service_get_404(client: TestClient) -> None:
    service = create_service(client, name="gone")
    client.delete(f"/api/services/{service['id']}")
    assert_problem(client.get(f"/api/services/{service['id']}/incidents"), 404)


def test_incidents_of_a_malformed_service_id_get_422(client: TestClient) -> None:
    assert_problem(client.get("/api/services/not-a-uuid/incidents"), 422, "service_id")
