"""Specification: keys are the caller's own, per organization and per principal; and a
response holding a secret is never kept (on SQLite and PostgreSQL, identities required)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.identity.models import ApiToken
from tests.idempotency.helpers import count, keyed, same_user_in, stored_keys
from tests.support.api import assert_problem
from tests.support.identity import bearer, new_organization, secured, user_token

SERVICE = {"name": "payment-service"}


@dataclass(frozen=True)
class Callers:
    """A client; the headers of alice and bob, owners of one organization, and of alice
    acting in another organization."""

    client: TestClient
    alice: dict[str, str]
    bob: dict[str, str]
    alice_elsewhere: dict[str, str]


@pytest.fixture
def callers(settings: Settings) -> Iterator[Callers]:
    secure = secured(settings)
    alice = user_token(secure, "owner", email="alice@example.com")
    bob = user_token(secure, "owner", email="bob@example.com")
    elsewhere = same_user_in(secure, alice, new_organization(secure, "org-b"))
    with TestClient(create_app(secure)) as client:
        yield Callers(client, bearer(alice), bearer(bob), bearer(elsewhere))


def test_one_key_in_two_organizations_is_two_keys(callers: Callers, settings: Settings) -> None:
    key = keyed("shared-key")
    in_a = callers.client.post("/api/services", json=SERVICE, headers={**key, **callers.alice})
    in_b = callers.client.post(
        "/api/services", json=SERVICE, headers={**key, **callers.alice_elsewhere}
    )

    assert (in_a.status_code, in_b.status_code) == (201, 201)
    assert "idempotent-replayed" not in in_b.headers
    assert in_a.json()["organization_id"] != in_b.json()["organization_id"]
    assert count(settings, Service) == 2


def test_one_key_sent_by_two_callers_of_one_organization_is_two_keys(
    callers: Callers, settings: Settings
) -> None:
    key = keyed("shared-key")
    alices = callers.client.post(
        "/api/incidents", json={"title": "a", "severity": "low"}, headers={**key, **callers.alice}
    )
    bobs = callers.client.post(
        "/api/incidents", json={"title": "b", "severity": "low"}, headers={**key, **callers.bob}
    )

    assert (alices.status_code, bobs.status_code) == (201, 201)  # no 422: not the same key
    assert alices.json()["id"] != bobs.json()["id"]


def test_a_response_holding_a_secret_is_not_kept_and_its_retry_creates_nothing(
    callers: Callers, settings: Settings
) -> None:
    headers = {**keyed(), **callers.alice}
    created = callers.client.post("/api/tokens", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201, created.text
    tokens = count(settings, ApiToken)

    retry = callers.client.post("/api/tokens", json={"name": "ci"}, headers=headers)

    assert_problem(retry, 409, field="Idempotency-Key")
    assert count(settings, ApiToken) == tokens
    secret = created.json()["token"].encode()
    assert all(secret not in (row.response_body or b"") for row in stored_keys(settings))
