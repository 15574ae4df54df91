"""Specification of `GET /api/slos`: order, filters and cursor pagination."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem, collect_pages, create_service, create_slo


def listed(client: TestClient, **params: str | int) -> list[str]:
    """The names on one page of the list, with these query parameters."""
    response = client.get("/api/slos", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def set_status(client: TestClient, slo_id: str, status: str) -> None:
    response = client.patch(f"/api/slos/{slo_id}", json={"status": status})
    assert response.status_code == 200, response.text


def test_no_slos_lists_no_items_and_no_cursor(client: TestClient) -> None:
    response = client.get("/api/slos")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_slos_are_listed_in_the_order_they_were_created(client: TestClient) -> None:
    service = create_service(client)
    for name in ["Latency", "API Availability", "Freshness", "Correctness"]:
        create_slo(client, service["id"], name=name)
    assert listed(client) == ["Latency", "API Availability", "Freshness", "Correctness"]


def test_listed_slos_have_the_same_shape_as_a_single_slo(client: TestClient) -> None:
    service = create_service(client)
    created = create_slo(client, service["id"], description="Share of 2xx responses.")
    assert client.get("/api/slos").json()["items"] == [created]


def test_filter_by_service_id_lists_only_that_services_slos(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    search = create_service(client, name="search")
    create_slo(client, payments["id"], name="Payments availability")
    create_slo(client, search["id"], name="Search latency")
    create_slo(client, payments["id"], name="Payments latency")
    assert listed(client, service_id=payments["id"]) == [
        "Payments availability",
        "Payments latency",
    ]
    assert listed(client, service_id=search["id"]) == ["Search latency"]


def test_filter_by_an_unknown_service_id_lists_nothing(client: TestClient) -> None:
    create_slo(client, create_service(client)["id"])
    assert listed(client, service_id=str(uuid.uuid4())) == []


def test_filter_by_a_malformed_service_id_gets_422(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/slos", params={"service_id": "x"}), 422)
    assert problem["errors"][0] == {
        "field": "service_id",
        "location": "query",
        "message": problem["errors"][0]["message"],
    }


def test_filter_by_status_lists_only_slos_in_that_status(client: TestClient) -> None:
    service = create_service(client)
    healthy = create_slo(client, service["id"], name="Healthy one")
    breached = create_slo(client, service["id"], name="Breached one")
    create_slo(client, service["id"], name="Fresh one")
    set_status(client, healthy["id"], "healthy")
    set_status(client, breached["id"], "breached")
    assert listed(client, status="healthy") == ["Healthy one"]
    assert listed(client, status="breached") == ["Breached one"]
    assert listed(client, status="unknown") == ["Fresh one"]
    assert listed(client, status="at_risk") == []


def test_status_filter_follows_a_status_change(client: TestClient) -> None:
    slo = create_slo(client, create_service(client)["id"], name="API Availability")
    set_status(client, slo["id"], "at_risk")
    assert listed(client, status="at_risk") == ["API Availability"]
    set_status(client, slo["id"], "healthy")
    assert listed(client, status="at_risk") == []
    assert listed(client, status="healthy") == ["API Availability"]


@pytest.mark.parametrize("status", ["green", "HEALTHY", "open"])
def test_filter_by_an_invalid_status_gets_422_naming_status(
    client: TestClient, status: str
) -> None:
    problem = assert_problem(client.get("/api/slos", params={"status": status}), 422, "status")
    assert problem["errors"][0]["location"] == "query"


def test_service_and_status_filters_combine(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    search = create_service(client, name="search")
    wanted = create_slo(client, payments["id"], name="Payments breached")
    other_service = create_slo(client, search["id"], name="Search breached")
    create_slo(client, payments["id"], name="Payments unknown")
    set_status(client, wanted["id"], "breached")
    set_status(client, other_service["id"], "breached")
    assert listed(client, service_id=payments["id"], status="breached") == ["Payments breached"]


# --- pagination ---------------------------------------------------------------------------


def test_pages_walk_every_slo_once_in_creation_order(client: TestClient) -> None:
    service = create_service(client)
    created = [create_slo(client, service["id"], name=f"slo-{i}")["id"] for i in range(7)]
    items, pages = collect_pages(client, "/api/slos", limit=2)
    assert [item["id"] for item in items] == created
    assert pages == 4


def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(client: TestClient) -> None:
    service = create_service(client)
    for i in range(4):
        create_slo(client, service["id"], name=f"slo-{i}")
    first = client.get("/api/slos", params={"limit": 2}).json()
    assert first["next_cursor"] is not None
    second = client.get("/api/slos", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["slo-2", "slo-3"]
    assert second["next_cursor"] is None


def test_pages_keep_the_filters(client: TestClient) -> None:
    payments = create_service(client, name="payments")
    search = create_service(client, name="search")
    for i in range(5):
        create_slo(client, payments["id"], name=f"pay-{i}")
        create_slo(client, search["id"], name=f"srch-{i}")
    items, pages = collect_pages(client, "/api/slos", limit=2, service_id=payments["id"])
    assert [item["name"] for item in items] == [f"pay-{i}" for i in range(5)]
    assert pages == 3


def test_slos_created_after_a_page_was_read_come_on_later_pages(client: TestClient) -> None:
    service = create_service(client)
    for i in range(3):
        create_slo(client, service["id"], name=f"slo-{i}")
    first = client.get("/api/slos", params={"limit": 2}).json()
    create_slo(client, service["id"], name="slo-late")
    second = client.get("/api/slos", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["slo-2", "slo-late"]


@pytest.mark.parametrize("limit", ["0", "-5", "501", "many"])
def test_limit_out_of_range_gets_422_naming_limit(client: TestClient, limit: str) -> None:
    assert_problem(client.get("/api/slos", params={"limit": limit}), 422, "limit")


@pytest.mark.parametrize("cursor", ["garbage", "WzEsMl0", "bnVsbA"])
def test_cursor_not_made_by_the_server_gets_422_naming_cursor(
    client: TestClient, cursor: str
) -> None:
    create_slo(client, create_service(client)["id"])
    assert_problem(client.get("/api/slos", params={"cursor": cursor}), 422, "cursor")


def test_a_cursor_from_the_services_list_gets_422(client: TestClient) -> None:
    for name in ["a-svc", "b-svc"]:
        create_service(client, name=name)
    services_cursor = client.get("/api/services", params={"limit": 1}).json()["next_cursor"]
    assert services_cursor is not None
    response = client.get("/api/slos", params={"cursor": services_cursor})
    assert_problem(response, 422, "cursor")


def encode(value: object) -> str:
    """A cursor the way the server encodes one: URL-safe base64 of JSON, unpadded."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize("row_id", [1, ["a"]])
def test_cursor_whose_id_is_not_a_string_gets_422_naming_cursor(
    client: TestClient, row_id: object
) -> None:
    create_slo(client, create_service(client)["id"])
    cursor = encode(["2024-01-01T00:00:00+00:00", row_id])
    assert_problem(client.get("/api/slos", params={"cursor": cursor}), 422, "cursor")


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59.999999-05:00", "0001-01-01T00:00:00+05:00", "yesterday"]
)
def test_cursor_with_a_time_that_cannot_be_stored_gets_422_naming_cursor(
    client: TestClient, timestamp: str
) -> None:
    create_slo(client, create_service(client)["id"])
    cursor = encode([timestamp, str(uuid.uuid4())])
    assert_problem(client.get("/api/slos", params={"cursor": cursor}), 422, "cursor")
