"""Specification of `/api/services`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import assert_problem, create_service


def test_create_service_with_the_seed_body_returns_201_and_location(client: TestClient) -> None:
    response = client.post(
        "/api/services",
        json={
            "name": "payment-service",
            "team": "payments-team",
            "repository_url": "https://github.com/org/payment-service",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "payment-service"
    assert body["team"] == "payments-team"
    assert body["repository_url"] == "https://github.com/org/payment-service"
    assert response.headers["location"] == f"/api/services/{body['id']}"


def test_duplicate_service_name_gets_409(client: TestClient) -> None:
    create_service(client, name="checkout")
    assert_problem(client.post("/api/services", json={"name": "checkout"}), 409)
