"""Specification of tenancy: nobody reaches another organization's data, on each backend.

Organization A holds one resource of every kind; an owner of organization B (the most
powerful role, so that no role check hides a leak) tries every route that names a
resource, with A's ids, and lists everything with A's ids as filters. Hypothesis picks
the attempts; none may succeed, and another organization's resource answers 404, never
403, so that its existence does not leak.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tests.support.api import create_incident, create_service, create_slo
from tests.support.identity import bearer, new_organization, secured, user_token

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.identity.permissions import ROUTES

PARAMETER = re.compile(r"\{(\w+)\}")
# Bodies that pass validation, so that the answer is about the resource, not the body.
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/incidents/{incident_id}/timeline": {"type": "note", "title": "x"},
    "POST /api/incidents/{incident_id}/tasks": {"title": "x"},
    "PATCH /api/organization/members/{user_id}": {"role": "viewer"},
}
ITEM_ROUTES = sorted(key for key in ROUTES if PARAMETER.search(key) and not key.startswith("WS"))


@pytest.fixture
def tenants(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """A client, organization A's ids of every kind, and the headers of B's owner."""
    secure = secured(settings)
    a_owner = user_token(secure, "owner", email="owner-a@example.com")
    b_org = new_organization(secure, "tenant-b")
    b_owner = user_token(secure, "owner", organization_id=b_org, email="owner-b@example.com")
    with TestClient(create_app(secure), headers=bearer(a_owner)) as client:
        yield client, _resources_of_a(client), bearer(b_owner)


def _resources_of_a(client: TestClient) -> dict[str, str]:
    service = create_service(client)
    incident = create_incident(client, service_ids=[service["id"]])
    timeline = client.get(f"/api/incidents/{incident['id']}/timeline").json()["items"]
    task = client.post(f"/api/incidents/{incident['id']}/tasks", json={"title": "t"}).json()
    slo = create_slo(client, service["id"])
    rule = client.post(
        "/api/correlation-rules", json={"name": "r", "matchers": ['team="a"']}
    ).json()
    channel = client.post(
        "/api/notification-channels",
        json={"name": "hooks", "config": {"kind": "webhook", "url": "https://hooks.example/a"}},
    ).json()
    policy = client.post(
        "/api/notification-policies",
        json={"name": "p", "events": ["incident.created"], "channel_ids": [channel["id"]]},
    ).json()
    alert = client.post(
        "/api/alerts", json={"title": "A", "labels": {"alertname": "A", "team": "a"}}
    ).json()
    account = client.post("/api/service-accounts", json={"name": "ci"}).json()
    token = client.post("/api/tokens", json={"name": "t"}).json()
    me = client.get("/api/me").json()
    notifications = client.get("/api/notifications").json()["items"]
    groups = client.get("/api/alert-groups").json()["items"]
    ids = {
        "service_id": service["id"],
        "incident_id": incident["id"],
        "event_id": timeline[0]["id"],
        "task_id": task["id"],
        "slo_id": slo["id"],
        "rule_id": rule["id"],
        "channel_id": channel["id"],
        "policy_id": policy["id"],
        "alert_id": alert["id"],
        "account_id": account["id"],
        "token_id": token["id"],
        "user_id": me["id"],
        "organization_id": me["organization_id"],
        "notification_id": notifications[0]["id"] if notifications else str(uuid.uuid4()),
        "group_id": groups[0]["id"] if groups else str(uuid.uuid4()),
    }
    assert all(ids.values()), ids
    return ids


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(ITEM_ROUTES))
def test_no_route_reaches_another_organizations_resource(
    tenants: tuple[TestClient, dict[str, str], dict[str, str]], key: str
) -> None:
    client, ids, stranger = tenants
    method, template = key.split(" ", 1)
    path = PARAMETER.sub(lambda match: ids[match.group(1)], template)
    response = client.request(method, path, json=BODIES.get(key, {}), headers=stranger)
    assert response.status_code == 404, f"{key}: {response.status_code} {response.text}"


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        ["/api/incidents", "/api/alerts", "/api/slos", "/api/services", "/api/notifications"]
    ),
    filter_name=st.sampled_from(["service_id", "incident_id", "q"]),
)
def test_lists_filtered_by_another_organizations_ids_show_nothing_of_it(
    tenants: tuple[TestClient, dict[str, str], dict[str, str]], path: str, filter_name: str
) -> None:
    client, ids, stranger = tenants
    value = ids.get(filter_name, "a")
    response = client.get(path, params={filter_name: value}, headers=stranger)
    assert response.status_code in (200, 422), response.text
    leaked = [
        name for name, id_ in ids.items() if id_ in response.text and name != "organization_id"
    ]
    assert leaked == [], f"{path}?{filter_name}: {leaked}"


def test_the_owner_of_a_sees_its_resources(
    tenants: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, ids, _ = tenants
    assert client.get(f"/api/incidents/{ids['incident_id']}").status_code == 200
    assert client.get(f"/api/services/{ids['service_id']}").status_code == 200
