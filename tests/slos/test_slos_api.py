"""Specification of `/api/slos`: create, read, update and delete one SLO."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem, create_service, create_slo


def seed_body(service_id: str, **fields: Any) -> dict[str, Any]:
    """The seed's `POST /api/slos` body, for `service_id`."""
    return {
        "service_id": service_id,
        "name": "API Availability",
        "objective": 99.9,
        "window_days": 30,
        **fields,
    }


def slo_names(client: TestClient) -> list[str]:
    """The names of every SLO, in list order."""
    response = client.get("/api/slos", params={"limit": 500})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


@pytest.fixture
def service_id(client: TestClient) -> str:
    """A service to hang SLOs on."""
    return str(create_service(client, name="payment-service")["id"])


# --- create -------------------------------------------------------------------------------


def test_create_slo_with_the_seed_body_returns_201_and_location(
    client: TestClient, service_id: str
) -> None:
    response = client.post("/api/slos", json=seed_body(service_id))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["service_id"] == service_id
    assert body["name"] == "API Availability"
    assert body["objective"] == 99.9
    assert body["window_days"] == 30
    assert response.headers["location"] == f"/api/slos/{body['id']}"


def test_created_slo_is_served_at_its_location(client: TestClient, service_id: str) -> None:
    created = client.post("/api/slos", json=seed_body(service_id))
    response = client.get(created.headers["location"])
    assert response.status_code == 200
    assert response.json() == created.json()


def test_new_slo_has_unknown_status_and_no_budget_yet(client: TestClient, service_id: str) -> None:
    body = client.post("/api/slos", json=seed_body(service_id)).json()
    assert body["status"] == "unknown"
    assert body["error_budget_remaining"] is None
    assert body["description"] is None


def test_new_slo_has_an_id_and_equal_utc_timestamps(client: TestClient, service_id: str) -> None:
    body = create_slo(client, service_id)
    uuid.UUID(body["id"])
    uuid.UUID(body["organization_id"])
    created_at = datetime.fromisoformat(body["created_at"])
    assert created_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created_at).total_seconds()) < 60
    assert body["updated_at"] == body["created_at"]


def test_window_days_defaults_to_30(client: TestClient, service_id: str) -> None:
    body = seed_body(service_id)
    del body["window_days"]
    response = client.post("/api/slos", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["window_days"] == 30


def test_an_slo_may_be_created_with_a_status_budget_and_description(
    client: TestClient, service_id: str
) -> None:
    body = create_slo(
        client,
        service_id,
        status="at_risk",
        error_budget_remaining=12.5,
        description="Share of 2xx responses.",
    )
    stored = client.get(f"/api/slos/{body['id']}").json()
    assert stored["status"] == "at_risk"
    assert stored["error_budget_remaining"] == 12.5
    assert stored["description"] == "Share of 2xx responses."


def test_slo_name_is_trimmed(client: TestClient, service_id: str) -> None:
    assert create_slo(client, service_id, name="  Latency p99 ")["name"] == "Latency p99"


# --- create: validation -------------------------------------------------------------------


@pytest.mark.parametrize("objective", [0, 100, 100.5, -1, 1000])
def test_objective_outside_0_to_100_exclusive_gets_422(
    client: TestClient, service_id: str, objective: float
) -> None:
    response = client.post("/api/slos", json=seed_body(service_id, objective=objective))
    assert_problem(response, 422, "objective")
    assert slo_names(client) == []


@pytest.mark.parametrize("objective", [99.99, 99.999, 50, 0.1, 99.9999])
def test_objective_strictly_between_0_and_100_is_accepted(
    client: TestClient, service_id: str, objective: float
) -> None:
    assert create_slo(client, service_id, objective=objective)["objective"] == objective


@pytest.mark.parametrize("objective", ["high", None, [99.9]])
def test_objective_that_is_not_a_number_gets_422(
    client: TestClient, service_id: str, objective: object
) -> None:
    response = client.post("/api/slos", json=seed_body(service_id, objective=objective))
    assert_problem(response, 422, "objective")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_objective_that_is_not_finite_gets_422(
    client: TestClient, service_id: str, literal: bytes
) -> None:
    body = (
        b'{"service_id": "' + service_id.encode() + b'", "name": "API Availability", '
        b'"window_days": 30, "objective": ' + literal + b"}"
    )
    response = client.post("/api/slos", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, "objective")
    assert slo_names(client) == []


@pytest.mark.parametrize("window_days", [0, 366, -1, 30.5, "thirty"])
def test_window_days_outside_1_to_365_gets_422(
    client: TestClient, service_id: str, window_days: object
) -> None:
    response = client.post("/api/slos", json=seed_body(service_id, window_days=window_days))
    assert_problem(response, 422, "window_days")


@pytest.mark.parametrize("window_days", [1, 7, 28, 365])
def test_window_days_from_1_to_365_is_accepted(
    client: TestClient, service_id: str, window_days: int
) -> None:
    assert create_slo(client, service_id, window_days=window_days)["window_days"] == window_days


@pytest.mark.parametrize("field", ["service_id", "name", "objective"])
def test_slo_without_a_required_field_gets_422_naming_it(
    client: TestClient, service_id: str, field: str
) -> None:
    body = seed_body(service_id)
    del body[field]
    assert_problem(client.post("/api/slos", json=body), 422, field)


@pytest.mark.parametrize("name", ["", "   ", "n" * 201])
def test_slo_name_that_is_empty_or_too_long_gets_422(
    client: TestClient, service_id: str, name: str
) -> None:
    assert_problem(client.post("/api/slos", json=seed_body(service_id, name=name)), 422, "name")


def test_slo_for_an_unknown_service_gets_422_naming_service_id(client: TestClient) -> None:
    response = client.post("/api/slos", json=seed_body(str(uuid.uuid4())))
    problem = assert_problem(response, 422, "service_id")
    assert problem["errors"][0]["location"] == "body"
    assert slo_names(client) == []


def test_slo_with_a_malformed_service_id_gets_422_naming_service_id(client: TestClient) -> None:
    assert_problem(client.post("/api/slos", json=seed_body("uuid-here")), 422, "service_id")


def test_slo_for_a_deleted_service_gets_422(client: TestClient) -> None:
    gone = create_service(client, name="gone")
    client.delete(f"/api/services/{gone['id']}")
    assert_problem(client.post("/api/slos", json=seed_body(gone["id"])), 422, "service_id")


@pytest.mark.parametrize("status", ["green", "HEALTHY", "", None])
def test_slo_with_an_invalid_status_gets_422(
    client: TestClient, service_id: str, status: str | None
) -> None:
    response = client.post("/api/slos", json=seed_body(service_id, status=status))
    assert_problem(response, 422, "status")


def test_unknown_field_gets_422_naming_it(client: TestClient, service_id: str) -> None:
    response = client.post("/api/slos", json=seed_body(service_id, target=99.9))
    assert_problem(response, 422, "target")


def test_rejected_creates_change_nothing(client: TestClient, service_id: str) -> None:
    create_slo(client, service_id, name="API Availability")
    rejected = [
        seed_body(service_id, objective=100),
        seed_body(service_id, window_days=0),
        seed_body(str(uuid.uuid4()), name="Elsewhere"),
        seed_body(service_id, name="API Availability"),
        seed_body(service_id, name="Latency", bogus=True),
    ]
    for body in rejected:
        response = client.post("/api/slos", json=body)
        assert response.status_code in {409, 422}, response.text
    assert slo_names(client) == ["API Availability"]


# --- create: unique names -----------------------------------------------------------------


def test_duplicate_slo_name_within_a_service_gets_409(client: TestClient, service_id: str) -> None:
    first = create_slo(client, service_id, name="API Availability")
    response = client.post("/api/slos", json=seed_body(service_id, objective=99.5))
    problem = assert_problem(response, 409)
    assert "API Availability" in problem["detail"]
    assert client.get(f"/api/slos/{first['id']}").json() == first
    assert slo_names(client) == ["API Availability"]


def test_the_same_slo_name_is_allowed_on_another_service(
    client: TestClient, service_id: str
) -> None:
    other = create_service(client, name="search")
    create_slo(client, service_id, name="API Availability")
    again = create_slo(client, other["id"], name="API Availability")
    assert again["service_id"] == other["id"]
    assert slo_names(client) == ["API Availability", "API Availability"]


def test_an_slo_can_be_created_after_a_409(client: TestClient, service_id: str) -> None:
    create_slo(client, service_id, name="API Availability")
    assert_problem(client.post("/api/slos", json=seed_body(service_id)), 409)
    create_slo(client, service_id, name="Latency")
    assert slo_names(client) == ["API Availability", "Latency"]


# --- get ----------------------------------------------------------------------------------


def test_get_slo_returns_it(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id, description="Share of 2xx responses.")
    response = client.get(f"/api/slos/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_slo_gets_404(client: TestClient, service_id: str) -> None:
    create_slo(client, service_id)
    problem = assert_problem(client.get(f"/api/slos/{uuid.uuid4()}"), 404)
    assert problem["detail"]


def test_get_slo_with_a_malformed_id_gets_422_naming_slo_id(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/slos/not-a-uuid"), 422, "slo_id")
    assert problem["errors"][0]["location"] == "path"


def test_a_service_id_is_not_an_slo_id(client: TestClient, service_id: str) -> None:
    create_slo(client, service_id)
    assert_problem(client.get(f"/api/slos/{service_id}"), 404)


# --- update -------------------------------------------------------------------------------


def test_the_seed_patch_sets_budget_and_status(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id)
    response = client.patch(
        f"/api/slos/{created['id']}", json={"error_budget_remaining": 85.5, "status": "healthy"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["error_budget_remaining"] == 85.5
    assert response.json()["status"] == "healthy"


def test_the_seed_patch_is_persisted_and_leaves_other_fields_alone(
    client: TestClient, service_id: str
) -> None:
    created = create_slo(client, service_id, description="Share of 2xx responses.")
    client.patch(
        f"/api/slos/{created['id']}", json={"error_budget_remaining": 85.5, "status": "healthy"}
    )
    stored = client.get(f"/api/slos/{created['id']}").json()
    assert stored["error_budget_remaining"] == 85.5
    assert stored["status"] == "healthy"
    untouched = {"id", "service_id", "name", "objective", "window_days", "description"}
    assert {k: stored[k] for k in untouched} == {k: created[k] for k in untouched}
    assert stored["created_at"] == created["created_at"]


def test_patch_advances_updated_at(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id)
    updated = client.patch(f"/api/slos/{created['id']}", json={"status": "healthy"}).json()
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


def test_patch_can_change_name_objective_window_and_description(
    client: TestClient, service_id: str
) -> None:
    created = create_slo(client, service_id)
    patch = {
        "name": "Checkout availability",
        "objective": 99.5,
        "window_days": 28,
        "description": "Successful checkouts.",
    }
    response = client.patch(f"/api/slos/{created['id']}", json=patch)
    assert response.status_code == 200, response.text
    stored = client.get(f"/api/slos/{created['id']}").json()
    assert {k: stored[k] for k in patch} == patch
    assert stored["status"] == "unknown"


def test_empty_patch_changes_nothing(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id)
    response = client.patch(f"/api/slos/{created['id']}", json={})
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("status", ["healthy", "at_risk", "breached", "no_data", "unknown"])
def test_every_slo_status_can_be_set(client: TestClient, service_id: str, status: str) -> None:
    created = create_slo(client, service_id)
    response = client.patch(f"/api/slos/{created['id']}", json={"status": status})
    assert response.status_code == 200, response.text
    assert client.get(f"/api/slos/{created['id']}").json()["status"] == status


@pytest.mark.parametrize("budget", [-12.5, -100, -999_999.5, 0, 100])
def test_budget_may_be_negative_once_overspent_and_at_most_100(
    client: TestClient, service_id: str, budget: float
) -> None:
    created = create_slo(client, service_id)
    response = client.patch(f"/api/slos/{created['id']}", json={"error_budget_remaining": budget})
    assert response.status_code == 200, response.text
    assert client.get(f"/api/slos/{created['id']}").json()["error_budget_remaining"] == budget


@pytest.mark.parametrize("budget", [100.01, 150, 1e300, "lots"])
def test_budget_over_100_percent_gets_422(
    client: TestClient, service_id: str, budget: object
) -> None:
    created = create_slo(client, service_id, error_budget_remaining=50.0)
    response = client.patch(f"/api/slos/{created['id']}", json={"error_budget_remaining": budget})
    assert_problem(response, 422, "error_budget_remaining")
    assert client.get(f"/api/slos/{created['id']}").json() == created


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_budget_that_is_not_finite_gets_422(
    client: TestClient, service_id: str, literal: bytes
) -> None:
    created = create_slo(client, service_id, error_budget_remaining=50.0)
    response = client.patch(
        f"/api/slos/{created['id']}",
        content=b'{"error_budget_remaining": ' + literal + b"}",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "error_budget_remaining")
    assert client.get(f"/api/slos/{created['id']}").json() == created


def test_budget_that_is_not_finite_is_refused_on_create(
    client: TestClient, service_id: str
) -> None:
    body = (
        b'{"service_id": "' + service_id.encode() + b'", "name": "API Availability", '
        b'"objective": 99.9, "error_budget_remaining": NaN}'
    )
    response = client.post("/api/slos", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, "error_budget_remaining")
    assert slo_names(client) == []


def test_patch_null_budget_clears_it(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id, error_budget_remaining=85.5)
    response = client.patch(f"/api/slos/{created['id']}", json={"error_budget_remaining": None})
    assert response.status_code == 200, response.text
    assert client.get(f"/api/slos/{created['id']}").json()["error_budget_remaining"] is None


def test_patch_null_description_clears_it(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id, description="Share of 2xx responses.")
    client.patch(f"/api/slos/{created['id']}", json={"description": None})
    assert client.get(f"/api/slos/{created['id']}").json()["description"] is None


@pytest.mark.parametrize("status", ["green", "HEALTHY", "", 1])
def test_patch_with_an_invalid_status_gets_422(
    client: TestClient, service_id: str, status: object
) -> None:
    created = create_slo(client, service_id)
    response = client.patch(f"/api/slos/{created['id']}", json={"status": status})
    assert_problem(response, 422, "status")
    assert client.get(f"/api/slos/{created['id']}").json()["status"] == "unknown"


@pytest.mark.parametrize("field", ["objective", "status", "name", "window_days"])
def test_patch_null_required_field_gets_422_and_changes_nothing(
    client: TestClient, service_id: str, field: str
) -> None:
    created = create_slo(client, service_id)
    response = client.patch(
        f"/api/slos/{created['id']}", json={field: None, "error_budget_remaining": 10.0}
    )
    assert_problem(response, 422, field)
    assert client.get(f"/api/slos/{created['id']}").json() == created


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"objective": 100}, "objective"),
        ({"objective": 0}, "objective"),
        ({"window_days": 366}, "window_days"),
        ({"window_days": 0}, "window_days"),
        ({"name": ""}, "name"),
        ({"service_id": "0f8fad5b-d9cb-469f-a165-707677289500"}, "service_id"),
        ({"target": 99.9}, "target"),
    ],
)
def test_invalid_patch_gets_422_naming_the_field_and_changes_nothing(
    client: TestClient, service_id: str, patch: dict[str, Any], field: str
) -> None:
    created = create_slo(client, service_id)
    assert_problem(client.patch(f"/api/slos/{created['id']}", json=patch), 422, field)
    assert client.get(f"/api/slos/{created['id']}").json() == created


def test_renaming_to_another_slo_name_of_the_service_gets_409(
    client: TestClient, service_id: str
) -> None:
    create_slo(client, service_id, name="API Availability")
    latency = create_slo(client, service_id, name="Latency")
    response = client.patch(
        f"/api/slos/{latency['id']}", json={"name": "API Availability", "status": "healthy"}
    )
    assert_problem(response, 409)
    assert client.get(f"/api/slos/{latency['id']}").json() == latency


def test_renaming_to_a_name_used_on_another_service_is_allowed(
    client: TestClient, service_id: str
) -> None:
    other = create_service(client, name="search")
    create_slo(client, other["id"], name="API Availability")
    mine = create_slo(client, service_id, name="Latency")
    response = client.patch(f"/api/slos/{mine['id']}", json={"name": "API Availability"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "API Availability"


def test_patch_unknown_slo_gets_404(client: TestClient) -> None:
    response = client.patch(f"/api/slos/{uuid.uuid4()}", json={"status": "healthy"})
    assert_problem(response, 404)


def test_patch_slo_with_a_malformed_id_gets_422(client: TestClient) -> None:
    response = client.patch("/api/slos/not-a-uuid", json={"status": "healthy"})
    assert_problem(response, 422, "slo_id")


# --- delete -------------------------------------------------------------------------------


def test_delete_slo_returns_204_and_then_it_is_gone(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id)
    response = client.delete(f"/api/slos/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(f"/api/slos/{created['id']}"), 404)
    assert slo_names(client) == []


def test_deleting_an_slo_twice_gets_404_the_second_time(
    client: TestClient, service_id: str
) -> None:
    created = create_slo(client, service_id)
    assert client.delete(f"/api/slos/{created['id']}").status_code == 204
    assert_problem(client.delete(f"/api/slos/{created['id']}"), 404)


def test_delete_unknown_slo_gets_404_and_deletes_nothing(
    client: TestClient, service_id: str
) -> None:
    create_slo(client, service_id, name="API Availability")
    assert_problem(client.delete(f"/api/slos/{uuid.uuid4()}"), 404)
    assert slo_names(client) == ["API Availability"]


def test_delete_slo_with_a_malformed_id_gets_422(client: TestClient) -> None:
    assert_problem(client.delete("/api/slos/not-a-uuid"), 422, "slo_id")


def test_delete_slo_keeps_its_service_and_sibling_slos(client: TestClient, service_id: str) -> None:
    doomed = create_slo(client, service_id, name="API Availability")
    create_slo(client, service_id, name="Latency")
    assert client.delete(f"/api/slos/{doomed['id']}").status_code == 204
    assert slo_names(client) == ["Latency"]
    assert client.get(f"/api/services/{service_id}").status_code == 200


def test_deleted_slo_name_can_be_used_again(client: TestClient, service_id: str) -> None:
    created = create_slo(client, service_id, name="API Availability")
    client.delete(f"/api/slos/{created['id']}")
    again = create_slo(client, service_id, name="API Availability")
    assert again["id"] != created["id"]
