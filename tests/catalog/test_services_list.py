"""Specification of `GET /api/services`: order, filters and cursor pagination."""

from __future__ import annotations

import base64

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem, collect_pages, create_service


def listed(client: TestClient, **params: str | int) -> list[str]:
    """The names on one page of the list, with these query parameters."""
    response = client.get("/api/services", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_empty_catalog_lists_no_items_and_no_cursor(client: TestClient) -> None:
    response = client.get("/api/services")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_services_are_listed_by_name_whatever_order_they_were_created_in(
    client: TestClient,
) -> None:
    for name in ["search", "checkout", "payments", "auth"]:
        create_service(client, name=name)
    assert listed(client) == ["auth", "checkout", "payments", "search"]


def test_listed_services_have_the_same_shape_as_a_single_service(client: TestClient) -> None:
    created = create_service(
        client,
        name="payment-service",
        team="payments-team",
        repository_url="https://github.com/org/payment-service",
        description="Takes the money.",
    )
    assert client.get("/api/services").json()["items"] == [created]


def test_filter_by_team_lists_only_that_teams_services(client: TestClient) -> None:
    create_service(client, name="payments", team="payments-team")
    create_service(client, name="search", team="discovery")
    create_service(client, name="checkout", team="payments-team")
    create_service(client, name="orphan")
    assert listed(client, team="payments-team") == ["checkout", "payments"]
    assert listed(client, team="discovery") == ["search"]


def test_filter_by_team_matches_the_whole_team_name_exactly(client: TestClient) -> None:
    create_service(client, name="payments", team="payments-team")
    assert listed(client, team="payments") == []
    assert listed(client, team="Payments-Team") == []


def test_filter_by_an_unknown_team_lists_nothing(client: TestClient) -> None:
    create_service(client, name="payments", team="payments-team")
    assert client.get("/api/services", params={"team": "nobody"}).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_q_finds_text_in_the_name_case_insensitively(client: TestClient) -> None:
    create_service(client, name="payment-service")
    create_service(client, name="search")
    create_service(client, name="payment-gateway")
    assert listed(client, q="PAYMENT") == ["payment-gateway", "payment-service"]
    assert listed(client, q="gate") == ["payment-gateway"]


def test_q_finds_text_in_the_description(client: TestClient) -> None:
    create_service(client, name="ledger", description="Keeps the Payment records.")
    create_service(client, name="search", description="Finds things.")
    assert listed(client, q="payment") == ["ledger"]


def test_q_treats_percent_and_underscore_as_plain_characters(client: TestClient) -> None:
    create_service(client, name="cache_v2")
    create_service(client, name="cachexv2")
    create_service(client, name="load-100%")
    create_service(client, name="load-1000")
    assert listed(client, q="_") == ["cache_v2"]
    assert listed(client, q="e_v") == ["cache_v2"]
    assert listed(client, q="%") == ["load-100%"]


def test_team_and_q_filters_combine(client: TestClient) -> None:
    create_service(client, name="payments-api", team="payments-team")
    create_service(client, name="payments-worker", team="payments-team")
    create_service(client, name="payments-reports", team="finance")
    assert listed(client, team="payments-team", q="worker") == ["payments-worker"]


def test_q_that_matches_nothing_lists_nothing(client: TestClient) -> None:
    create_service(client, name="payments")
    assert listed(client, q="zzz") == []


def test_filter_values_over_200_characters_get_422(client: TestClient) -> None:
    assert_problem(client.get("/api/services", params={"team": "t" * 201}), 422, "team")
    assert_problem(client.get("/api/services", params={"q": "q" * 201}), 422, "q")


@pytest.mark.parametrize("parameter", ["team", "q"])
def test_filter_value_with_a_nul_character_gets_422(client: TestClient, parameter: str) -> None:
    create_service(client, name="checkout", team="payments-team")
    response = client.get("/api/services", params={parameter: "pay\x00"})
    problem = assert_problem(response, 422, parameter)
    assert problem["errors"][0]["location"] == "query"


# --- pagination ---------------------------------------------------------------------------


def test_pages_walk_every_service_once_in_name_order(client: TestClient) -> None:
    expected = sorted(f"svc-{i:02d}" for i in range(11))
    for name in reversed(expected):
        create_service(client, name=name)
    items, pages = collect_pages(client, "/api/services", limit=3)
    assert [item["name"] for item in items] == expected
    assert len({item["id"] for item in items}) == 11
    assert pages == 4


def test_limit_caps_the_page_and_next_cursor_leads_on(client: TestClient) -> None:
    for name in ["a-svc", "b-svc", "c-svc"]:
        create_service(client, name=name)
    first = client.get("/api/services", params={"limit": 2}).json()
    assert [item["name"] for item in first["items"]] == ["a-svc", "b-svc"]
    assert isinstance(first["next_cursor"], str)
    second = client.get("/api/services", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["c-svc"]
    assert second["next_cursor"] is None


def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(client: TestClient) -> None:
    for name in ["a-svc", "b-svc", "c-svc", "d-svc"]:
        create_service(client, name=name)
    first = client.get("/api/services", params={"limit": 2}).json()
    second = client.get("/api/services", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["c-svc", "d-svc"]
    assert second["next_cursor"] is None


def test_pages_keep_the_filter(client: TestClient) -> None:
    for i in range(5):
        create_service(client, name=f"pay-{i}", team="payments-team")
        create_service(client, name=f"srch-{i}", team="discovery")
    items, pages = collect_pages(client, "/api/services", limit=2, team="payments-team")
    assert [item["name"] for item in items] == [f"pay-{i}" for i in range(5)]
    assert pages == 3


def test_services_created_before_the_cursor_do_not_shift_later_pages(
    client: TestClient,
) -> None:
    for name in ["b-svc", "d-svc", "f-svc", "h-svc"]:
        create_service(client, name=name)
    first = client.get("/api/services", params={"limit": 2}).json()
    create_service(client, name="a-svc")  # sorts before the cursor: not on a later page
    create_service(client, name="e-svc")  # sorts after it: on the next page
    second = client.get("/api/services", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["e-svc", "f-svc"]


def test_limit_defaults_to_50(client: TestClient) -> None:
    for i in range(51):
        create_service(client, name=f"svc-{i:02d}")
    page = client.get("/api/services").json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = client.get("/api/services", params={"cursor": page["next_cursor"]}).json()
    assert [item["name"] for item in rest["items"]] == ["svc-50"]


def test_limit_of_500_is_accepted(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert listed(client, limit=500) == ["checkout"]


@pytest.mark.parametrize("limit", ["0", "-1", "501", "ten", "2.5"])
def test_limit_out_of_range_gets_422_naming_limit(client: TestClient, limit: str) -> None:
    problem = assert_problem(client.get("/api/services", params={"limit": limit}), 422, "limit")
    assert problem["errors"][0]["location"] == "query"


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "bnVsbA", "WzEsMl0", "a" * 513])
def test_cursor_not_made_by_the_server_gets_422_naming_cursor(
    client: TestClient, cursor: str
) -> None:
    create_service(client, name="checkout")
    response = client.get("/api/services", params={"cursor": cursor})
    assert_problem(response, 422, "cursor")


@pytest.mark.parametrize("row_id", [1, ["a"]])
def test_cursor_whose_id_is_not_a_string_gets_422_naming_cursor(
    client: TestClient, row_id: object
) -> None:
    create_service(client, name="checkout")
    cursor = base64.urlsafe_b64encode(orjson.dumps(["checkout", row_id])).decode().rstrip("=")
    response = client.get("/api/services", params={"cursor": cursor})
    assert_problem(response, 422, "cursor")
