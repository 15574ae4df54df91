"""Specification of a retried `POST` with an `Idempotency-Key` (on SQLite and PostgreSQL):
the first response again, nothing created again, and a clear refusal for a misused key."""

from __future__ import annotations

from fastapi.testclient import TestClient

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from tests.idempotency.helpers import count, keyed, sqlite_only, stored_keys
from tests.support.api import assert_problem

SERVICE = {"name": "payment-service", "team": "payments"}


def test_a_retry_gets_the_first_response_status_body_and_location(client: TestClient) -> None:
    headers = keyed()
    first = client.post("/api/services", json=SERVICE, headers=headers)
    retry = client.post("/api/services", json=SERVICE, headers=headers)

    assert first.status_code == 201, first.text
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["content-type"] == first.headers["content-type"]


def test_a_retry_creates_nothing(client: TestClient, settings: Settings) -> None:
    headers = keyed()
    for _ in range(3):
        assert client.post("/api/services", json=SERVICE, headers=headers).status_code == 201

    assert count(settings, Service) == 1


@sqlite_only
def test_a_replayed_response_says_so_and_the_first_does_not(client: TestClient) -> None:
    headers = keyed()
    first = client.post("/api/services", json=SERVICE, headers=headers)
    retry = client.post("/api/services", json=SERVICE, headers=headers)

    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["x-request-id"] != first.headers["x-request-id"]  # its own request


@sqlite_only
def test_a_malformed_key_is_refused_with_400_naming_the_header_and_changes_nothing(
    client: TestClient, settings: Settings
) -> None:
    malformed: list[list[tuple[str, str]]] = [
        [("Idempotency-Key", "")],
        [("Idempotency-Key", "k" * 256)],
        [("Idempotency-Key", "two words")],
        [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    ]
    for headers in malformed:
        response = client.post("/api/services", json=SERVICE, headers=headers)
        assert_problem(response, 400, field="Idempotency-Key")

    assert count(settings, Service) == 0
    assert stored_keys(settings) == []


def test_the_same_key_with_another_body_is_refused_with_422_naming_the_header(
    client: TestClient, settings: Settings
) -> None:
    headers = keyed()
    assert client.post("/api/services", json=SERVICE, headers=headers).status_code == 201

    reused = client.post("/api/services", json={**SERVICE, "team": "other"}, headers=headers)

    assert_problem(reused, 422, field="Idempotency-Key")
    assert count(settings, Service) == 1


@sqlite_only
def test_the_same_key_on_another_endpoint_is_refused_with_422(client: TestClient) -> None:
    headers = keyed()
    assert client.post("/api/services", json=SERVICE, headers=headers).status_code == 201

    reused = client.post(
        "/api/incidents", json={"title": "down", "severity": "low"}, headers=headers
    )

    assert_problem(reused, 422, field="Idempotency-Key")


@sqlite_only
def test_without_the_header_the_same_post_twice_creates_two(
    client: TestClient, settings: Settings
) -> None:
    incident = {"title": "down", "severity": "low"}
    first = client.post("/api/incidents", json=incident)
    second = client.post("/api/incidents", json=incident)

    assert first.json()["id"] != second.json()["id"]
    assert stored_keys(settings) == []


def test_a_request_refused_by_validation_does_not_use_up_its_key(
    client: TestClient, settings: Settings
) -> None:
    headers = keyed()
    refused = client.post("/api/services", json={"team": "no name"}, headers=headers)
    assert_problem(refused, 422, field="name")
    assert stored_keys(settings) == []

    fixed = client.post("/api/services", json=SERVICE, headers=headers)

    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


@sqlite_only
def test_a_refusal_that_changed_nothing_is_not_replayed_once_the_cause_is_gone(
    client: TestClient,
) -> None:
    taken = client.post("/api/services", json=SERVICE)
    assert taken.status_code == 201
    headers = keyed()
    assert_problem(client.post("/api/services", json=SERVICE, headers=headers), 409)

    client.delete(taken.headers["location"])
    retry = client.post("/api/services", json=SERVICE, headers=headers)

    assert retry.status_code == 201
