"""Specification of `/api/services`: create, read, update and delete one service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem, create_incident, create_service, create_slo

SEED_BODY = {
    "name": "payment-service",
    "team": "payments-team",
    "repository_url": "https://github.com/org/payment-service",
}


def names(client: TestClient) -> list[str]:
    """The names of every service, as the first page of the list shows them."""
    response = client.get("/api/services", params={"limit": 500})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


# --- create -------------------------------------------------------------------------------


def test_create_service_with_the_seed_body_returns_201_and_location(client: TestClient) -> None:
    response = client.post("/api/services", json=SEED_BODY)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "payment-service"
    assert body["team"] == "payments-team"
    assert body["repository_url"] == "https://github.com/org/payment-service"
    assert response.headers["location"] == f"/api/services/{body['id']}"


def test_created_service_is_served_at_its_location(client: TestClient) -> None:
    created = client.post("/api/services", json=SEED_BODY)
    response = client.get(created.headers["location"])
    assert response.status_code == 200
    assert response.json() == created.json()


def test_created_service_has_an_id_utc_timestamps_and_null_optional_fields(
    client: TestClient,
) -> None:
    body = create_service(client, name="search")
    uuid.UUID(body["id"])
    uuid.UUID(body["organization_id"])
    assert body["team"] is None
    assert body["repository_url"] is None
    assert body["description"] is None
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.utcoffset() is not None
    assert created_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created_at).total_seconds()) < 60
    assert body["updated_at"] == body["created_at"]


def test_create_service_stores_a_description(client: TestClient) -> None:
    body = create_service(client, description="Takes the money.")
    assert client.get(f"/api/services/{body['id']}").json()["description"] == "Takes the money."


def test_service_name_is_trimmed_of_surrounding_whitespace(client: TestClient) -> None:
    body = create_service(client, name="  checkout \n")
    assert body["name"] == "checkout"


def test_service_name_of_200_characters_is_accepted(client: TestClient) -> None:
    body = create_service(client, name="n" * 200)
    assert body["name"] == "n" * 200


def test_unicode_service_name_is_kept_as_sent(client: TestClient) -> None:
    body = create_service(client, name="paiement-équipe-支付")
    assert client.get(f"/api/services/{body['id']}").json()["name"] == "paiement-équipe-支付"


# --- create: validation -------------------------------------------------------------------


def test_service_without_a_name_gets_422_naming_name(client: TestClient) -> None:
    response = client.post("/api/services", json={"team": "payments-team"})
    problem = assert_problem(response, 422, "name")
    assert problem["errors"][0]["location"] == "body"
    assert problem["errors"][0]["message"]


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_service_name_gets_422(client: TestClient, name: str) -> None:
    assert_problem(client.post("/api/services", json={"name": name}), 422, "name")


def test_service_name_over_200_characters_gets_422(client: TestClient) -> None:
    assert_problem(client.post("/api/services", json={"name": "n" * 201}), 422, "name")


@pytest.mark.parametrize("name", [123, True, ["checkout"], {"name": "checkout"}])
def test_service_name_that_is_not_a_string_gets_422(client: TestClient, name: object) -> None:
    assert_problem(client.post("/api/services", json={"name": name}), 422, "name")


def test_service_name_with_a_nul_character_gets_422(client: TestClient) -> None:
    assert_problem(client.post("/api/services", json={"name": "pay\x00ment"}), 422, "name")


def test_team_over_200_characters_gets_422(client: TestClient) -> None:
    response = client.post("/api/services", json={"name": "checkout", "team": "t" * 201})
    assert_problem(response, 422, "team")


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "github.com/org/payment-service",
        "ftp://github.com/org/payment-service",
        "javascript:alert(1)",
        "https://",
        "",
    ],
)
def test_malformed_repository_url_gets_422_naming_it(client: TestClient, url: str) -> None:
    response = client.post("/api/services", json={"name": "checkout", "repository_url": url})
    assert_problem(response, 422, "repository_url")


@pytest.mark.parametrize(
    "url", ["http://git.internal:8080/org/repo", "https://gitlab.com/group/sub/repo.git"]
)
def test_http_and_https_repository_urls_are_accepted(client: TestClient, url: str) -> None:
    assert create_service(client, repository_url=url)["repository_url"] == url


def test_repository_url_over_2048_characters_gets_422(client: TestClient) -> None:
    url = "https://github.com/" + "a" * 2030
    assert len(url) > 2048
    response = client.post("/api/services", json={"name": "checkout", "repository_url": url})
    assert_problem(response, 422, "repository_url")


def test_repository_url_that_grows_past_2048_characters_when_normalised_gets_422(
    client: TestClient,
) -> None:
    # Each "é" is percent-encoded into six characters: 1,019 characters sent, 6,019 stored.
    url = "https://example.com/" + "é" * 999
    assert len(url) <= 2048
    response = client.post("/api/services", json={"name": "checkout", "repository_url": url})
    assert_problem(response, 422, "repository_url")
    assert names(client) == []


def test_unknown_field_gets_422_naming_it(client: TestClient) -> None:
    response = client.post("/api/services", json={"name": "checkout", "owner": "alice"})
    assert_problem(response, 422, "owner")


def test_every_invalid_field_is_named_in_one_problem(client: TestClient) -> None:
    response = client.post(
        "/api/services", json={"team": "t" * 201, "repository_url": "nope", "extra": 1}
    )
    problem = assert_problem(response, 422)
    named = {error["field"] for error in problem["errors"]}
    assert named == {"name", "team", "repository_url", "extra"}
    assert all(error["location"] == "body" for error in problem["errors"])


def test_body_that_is_not_a_json_object_gets_422(client: TestClient) -> None:
    assert_problem(client.post("/api/services", json=["checkout"]), 422)


def test_malformed_json_gets_400(client: TestClient) -> None:
    response = client.post(
        "/api/services",
        content=b'{"name": "checkout",',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)
    assert names(client) == []


def test_rejected_create_changes_nothing(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.post("/api/services", json={"name": ""}), 422)
    assert_problem(client.post("/api/services", json={"name": "x", "bogus": 1}), 422)
    assert_problem(client.post("/api/services", json={"name": "y", "repository_url": "z"}), 422)
    assert names(client) == ["checkout"]


# --- create: unique names -----------------------------------------------------------------


def test_duplicate_service_name_gets_409(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.post("/api/services", json={"name": "checkout"}), 409)


def test_duplicate_name_gets_409_and_leaves_the_first_service_as_it_was(
    client: TestClient,
) -> None:
    first = create_service(client, name="checkout", team="payments-team")
    response = client.post("/api/services", json={"name": "checkout", "team": "other-team"})
    problem = assert_problem(response, 409)
    assert "checkout" in problem["detail"]
    assert names(client) == ["checkout"]
    assert client.get(f"/api/services/{first['id']}").json() == first


def test_name_that_is_a_duplicate_once_trimmed_gets_409(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.post("/api/services", json={"name": " checkout "}), 409)


def test_a_service_can_be_created_after_a_409(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.post("/api/services", json={"name": "checkout"}), 409)
    create_service(client, name="payments")
    assert names(client) == ["checkout", "payments"]


# --- get ----------------------------------------------------------------------------------


def test_get_service_returns_it(client: TestClient) -> None:
    created = create_service(client, **SEED_BODY, description="Takes the money.")
    response = client.get(f"/api/services/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_service_gets_404(client: TestClient) -> None:
    problem = assert_problem(client.get(f"/api/services/{uuid.uuid4()}"), 404)
    assert problem["detail"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0f8fad5b-d9cb-469f-a165-70867728950"])
def test_get_with_a_malformed_id_gets_422_naming_service_id(
    client: TestClient, bad_id: str
) -> None:
    problem = assert_problem(client.get(f"/api/services/{bad_id}"), 422, "service_id")
    assert problem["errors"][0]["location"] == "path"


# --- update -------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(client: TestClient) -> None:
    created = create_service(client, **SEED_BODY, description="Takes the money.")
    response = client.patch(f"/api/services/{created['id']}", json={"team": "platform"})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["team"] == "platform"
    # The version moves with every change (it is the ETag), as updated_at does.
    unchanged = {k: v for k, v in created.items() if k not in {"team", "updated_at", "version"}}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["version"] == created["version"] + 1


def test_patch_is_persisted(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    patch = {
        "name": "checkout-v2",
        "repository_url": "https://github.com/org/checkout",
        "description": "Second edition.",
    }
    response = client.patch(f"/api/services/{created['id']}", json=patch)
    assert response.status_code == 200, response.text
    stored = client.get(f"/api/services/{created['id']}").json()
    assert stored == response.json()
    assert {k: stored[k] for k in patch} == patch


def test_patch_advances_updated_at_and_keeps_created_at(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    updated = client.patch(f"/api/services/{created['id']}", json={"team": "platform"}).json()
    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


def test_empty_patch_changes_nothing(client: TestClient) -> None:
    created = create_service(client, **SEED_BODY)
    response = client.patch(f"/api/services/{created['id']}", json={})
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("field", ["team", "repository_url", "description"])
def test_patch_null_clears_an_optional_field(client: TestClient, field: str) -> None:
    created = create_service(client, **SEED_BODY, description="Takes the money.")
    response = client.patch(f"/api/services/{created['id']}", json={field: None})
    assert response.status_code == 200, response.text
    assert response.json()[field] is None
    stored = client.get(f"/api/services/{created['id']}").json()
    assert stored[field] is None
    assert stored["name"] == "payment-service"


def test_patch_null_name_gets_422_and_keeps_the_name(client: TestClient) -> None:
    created = create_service(client, name="checkout", team="payments-team")
    response = client.patch(
        f"/api/services/{created['id']}", json={"name": None, "team": "platform"}
    )
    assert_problem(response, 422, "name")
    assert client.get(f"/api/services/{created['id']}").json() == created


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"team": "  "}, "team"),
        ({"repository_url": "not a url"}, "repository_url"),
        ({"owner": "alice"}, "owner"),
        ({"id": "0f8fad5b-d9cb-469f-a165-707677289500"}, "id"),
    ],
)
def test_invalid_patch_gets_422_naming_the_field_and_changes_nothing(
    client: TestClient, patch: dict[str, Any], field: str
) -> None:
    created = create_service(client, **SEED_BODY)
    assert_problem(client.patch(f"/api/services/{created['id']}", json=patch), 422, field)
    assert client.get(f"/api/services/{created['id']}").json() == created


def test_patch_repository_url_that_grows_past_2048_characters_when_normalised_gets_422(
    client: TestClient,
) -> None:
    created = create_service(client, **SEED_BODY)
    response = client.patch(
        f"/api/services/{created['id']}",
        json={"repository_url": "https://example.com/" + "é" * 999},
    )
    assert_problem(response, 422, "repository_url")
    assert client.get(f"/api/services/{created['id']}").json() == created


def test_patch_unknown_service_gets_404(client: TestClient) -> None:
    response = client.patch(f"/api/services/{uuid.uuid4()}", json={"team": "platform"})
    assert_problem(response, 404)
    assert names(client) == []


def test_patch_with_a_malformed_id_gets_422(client: TestClient) -> None:
    response = client.patch("/api/services/not-a-uuid", json={"team": "platform"})
    assert_problem(response, 422, "service_id")


def test_renaming_to_an_existing_name_gets_409_and_keeps_both_services(
    client: TestClient,
) -> None:
    checkout = create_service(client, name="checkout")
    payments = create_service(client, name="payments", team="payments-team")
    response = client.patch(
        f"/api/services/{payments['id']}", json={"name": "checkout", "team": "platform"}
    )
    assert_problem(response, 409)
    assert client.get(f"/api/services/{payments['id']}").json() == payments
    assert client.get(f"/api/services/{checkout['id']}").json() == checkout
    assert names(client) == ["checkout", "payments"]


def test_renaming_a_service_to_its_own_name_is_allowed(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    response = client.patch(f"/api/services/{created['id']}", json={"name": "checkout"})
    assert response.status_code == 200
    assert response.json()["name"] == "checkout"


def test_renamed_service_frees_its_old_name(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    client.patch(f"/api/services/{created['id']}", json={"name": "checkout-v2"})
    create_service(client, name="checkout")
    assert names(client) == ["checkout", "checkout-v2"]


# --- delete -------------------------------------------------------------------------------


def test_delete_service_returns_204_and_then_it_is_gone(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    response = client.delete(f"/api/services/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(f"/api/services/{created['id']}"), 404)
    assert names(client) == []


def test_deleting_twice_gets_404_the_second_time(client: TestClient) -> None:
    created = create_service(client)
    assert client.delete(f"/api/services/{created['id']}").status_code == 204
    assert_problem(client.delete(f"/api/services/{created['id']}"), 404)


def test_delete_unknown_service_gets_404(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.delete(f"/api/services/{uuid.uuid4()}"), 404)
    assert names(client) == ["checkout"]


def test_delete_with_a_malformed_id_gets_422(client: TestClient) -> None:
    assert_problem(client.delete("/api/services/not-a-uuid"), 422, "service_id")


def test_delete_only_removes_that_service(client: TestClient) -> None:
    create_service(client, name="checkout")
    doomed = create_service(client, name="payments")
    create_service(client, name="search")
    assert client.delete(f"/api/services/{doomed['id']}").status_code == 204
    assert names(client) == ["checkout", "search"]


def test_deleted_service_name_can_be_used_again(client: TestClient) -> None:
    created = create_service(client, name="checkout")
    client.delete(f"/api/services/{created['id']}")
    again = create_service(client, name="checkout")
    assert again["id"] != created["id"]


def test_delete_is_refused_with_409_while_an_incident_links_the_service(
    client: TestClient,
) -> None:
    service = create_service(client, name="checkout")
    incident = create_incident(client, service_ids=[service["id"]])
    problem = assert_problem(client.delete(f"/api/services/{service['id']}"), 409)
    assert "incident" in problem["detail"]
    assert client.get(f"/api/services/{service['id']}").json() == service
    linked = client.get(f"/api/incidents/{incident['id']}").json()
    assert linked["service_ids"] == [service["id"]]


def test_delete_is_refused_with_409_while_an_slo_belongs_to_the_service(
    client: TestClient,
) -> None:
    service = create_service(client, name="checkout")
    slo = create_slo(client, service["id"])
    problem = assert_problem(client.delete(f"/api/services/{service['id']}"), 409)
    assert "SLO" in problem["detail"]
    assert client.get(f"/api/services/{service['id']}").json() == service
    assert client.get(f"/api/slos/{slo['id']}").json() == slo


def test_delete_succeeds_once_the_services_slos_are_deleted(client: TestClient) -> None:
    service = create_service(client, name="checkout")
    slo = create_slo(client, service["id"])
    assert client.delete(f"/api/slos/{slo['id']}").status_code == 204
    assert client.delete(f"/api/services/{service['id']}").status_code == 204
    assert_problem(client.get(f"/api/services/{service['id']}"), 404)


def test_delete_succeeds_once_no_incident_links_the_service(client: TestClient) -> None:
    service = create_service(client, name="checkout")
    incident = create_incident(client, service_ids=[service["id"]])
    response = client.patch(f"/api/incidents/{incident['id']}", json={"service_ids": []})
    assert response.status_code == 200, response.text
    assert client.delete(f"/api/services/{service['id']}").status_code == 204


def test_an_slo_on_another_service_does_not_block_delete(client: TestClient) -> None:
    other = create_service(client, name="checkout")
    create_slo(client, other["id"])
    create_incident(client, service_ids=[other["id"]])
    lone = create_service(client, name="payments")
    assert client.delete(f"/api/services/{lone['id']}").status_code == 204
    assert names(client) == ["checkout"]
