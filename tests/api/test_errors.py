"""Specification of error responses: every error is RFC 9457 problem+json, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.api.pagination import encode_cursor
from tests.support.api import assert_problem, create_incident, create_service

MISSING_ID = "00000000-0000-4000-8000-0000000000ff"


def test_malformed_json_with_a_json_content_type_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/incidents",
        content=b'{"title": "Payment Service Down",',
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert "JSON" in problem["detail"]


def test_a_form_body_instead_of_json_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", data={"title": "Payment Service Down", "severity": "critical"}
    )
    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]


def test_a_plain_text_body_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/services", content=b"payment-service", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415)


def test_a_json_subtype_content_type_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/api/services",
        content=b'{"name": "payment-service"}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 201, response.text


def test_a_field_of_the_wrong_type_is_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/api/incidents", json={"title": 123, "severity": "critical"})
    problem = assert_problem(response, 422, field="title")
    assert problem["errors"][0]["location"] == "body"
    assert "title" in problem["detail"]


def test_an_unknown_enum_value_is_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/api/incidents", json={"title": "Down", "severity": "urgent"})
    assert_problem(response, 422, field="severity")


def test_an_unknown_enum_value_in_a_filter_is_422_naming_the_query_parameter(
    client: TestClient,
) -> None:
    response = client.get("/api/incidents", params={"status": "sleeping"})
    problem = assert_problem(response, 422, field="status.0")
    assert problem["errors"][0]["location"] == "query"


def test_a_bad_uuid_in_the_path_is_422_naming_the_path_parameter(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/incidents/not-a-uuid"), 422, field="incident_id")
    assert problem["errors"][0]["location"] == "path"


def test_a_bad_uuid_in_the_body_is_422_naming_its_position(client: TestClient) -> None:
    response = client.post(
        "/api/incidents", json={"title": "Down", "service_ids": [str(uuid.uuid4()), "nope"]}
    )
    assert_problem(response, 422, field="service_ids.1")


def test_a_missing_required_field_is_422_naming_the_field(client: TestClient) -> None:
    problem = assert_problem(
        client.post("/api/incidents", json={"severity": "critical"}), 422, field="title"
    )
    assert problem["errors"][0]["location"] == "body"


def test_every_invalid_field_is_named_at_once(client: TestClient) -> None:
    response = client.post(
        "/api/slos", json={"service_id": "nope", "name": "", "objective": 150, "window_days": 0}
    )
    problem = assert_problem(response, 422)
    named = {error["field"] for error in problem["errors"]}
    assert named == {"service_id", "name", "objective", "window_days"}


def test_an_unknown_field_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/api/services", json={"name": "payment-service", "owner": "me"})
    assert_problem(response, 422, field="owner")


def test_an_empty_body_where_one_is_required_is_422(client: TestClient) -> None:
    response = client.post("/api/services", headers={"content-type": "application/json"})
    assert_problem(response, 422, field="body")


def test_a_post_with_no_body_and_no_content_type_is_422_naming_the_body(
    client: TestClient,
) -> None:
    response = client.post("/api/incidents")
    assert_problem(response, 422, "body")


def test_an_unknown_route_is_404_problem(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/no-such-thing"), 404)
    assert problem["title"] == "Not Found"


def test_an_unknown_resource_is_404_problem(client: TestClient) -> None:
    assert_problem(client.get(f"/api/incidents/{MISSING_ID}"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/incidents", {"GET", "POST"}),
        ("DELETE", f"/api/incidents/{MISSING_ID}", {"GET", "PATCH"}),
        ("POST", "/health", {"GET"}),
    ],
)
def test_a_wrong_method_is_405_problem_listing_every_allowed_method(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path, json={"title": "Down"})
    problem = assert_problem(response, 405)
    assert problem["title"] == "Method Not Allowed"
    assert {name.strip() for name in response.headers["allow"].split(",")} == allowed


def test_a_refused_request_changes_nothing(client: TestClient) -> None:
    create_service(client, name="checkout")
    client.post("/api/services", json={"name": "checkout-2", "owner": "me"})
    client.post("/api/incidents", json={"title": "Down", "service_ids": [MISSING_ID]})
    assert [s["name"] for s in client.get("/api/services").json()["items"]] == ["checkout"]
    assert client.get("/api/incidents").json()["items"] == []


# --- Hostile input: whatever arrives, the answer is a 4xx (or a plain success), never a 5xx,
# and the data already stored is untouched.

INJECTION = "' OR 1=1 --"
DROP_TABLE = "x'); DROP TABLE services; --"


def _nested(depth: int) -> dict[str, Any]:
    """{"a": {"a": ... {}}}, `depth` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_REQUESTS: dict[str, dict[str, Any]] = {
    # SQL injection in filters, paths and fields.
    "injection in incident text filter": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"q": INJECTION},
    },
    "injection in service team filter": {
        "method": "GET",
        "url": "/api/services",
        "params": {"team": INJECTION},
    },
    "injection in service text filter": {
        "method": "GET",
        "url": "/api/services",
        "params": {"q": DROP_TABLE},
    },
    "injection in status filter": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"status": f"open{INJECTION}"},
    },
    "injection in service_id filter": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"service_id": INJECTION},
    },
    "injection in cursor": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"cursor": INJECTION},
    },
    "forged cursor with injection as the incident sort key": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"cursor": encode_cursor(INJECTION, uuid.UUID(MISSING_ID))},
    },
    "forged cursor with injection as the service sort key": {
        "method": "GET",
        "url": "/api/services",
        "params": {"cursor": encode_cursor(DROP_TABLE, uuid.UUID(MISSING_ID))},
    },
    "forged cursor with a far-future time": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"cursor": encode_cursor("9999-12-31T23:59:59+14:00", uuid.UUID(MISSING_ID))},
    },
    "zero limit": {"method": "GET", "url": "/api/incidents", "params": {"limit": "0"}},
    "injection in created_after": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"created_after": INJECTION},
    },
    "injection in the path": {"method": "GET", "url": "/api/incidents/' OR 1=1 --"},
    "injection in a service name": {
        "method": "POST",
        "url": "/api/services",
        "json": {"name": DROP_TABLE, "team": INJECTION},
    },
    "injection in service_ids": {
        "method": "POST",
        "url": "/api/incidents",
        "json": {"title": "Down", "service_ids": [INJECTION]},
    },
    "injection in a timeline type": {
        "method": "POST",
        "url": "/api/incidents/{incident_id}/timeline",
        "json": {"type": INJECTION, "title": "x"},
    },
    "injection in the actor header": {
        "method": "PATCH",
        "url": "/api/incidents/{incident_id}",
        "json": {},
        "headers": {"x-actor": INJECTION},
    },
    # Huge numbers.
    "huge limit": {"method": "GET", "url": "/api/incidents", "params": {"limit": "9" * 40}},
    "negative limit": {"method": "GET", "url": "/api/services", "params": {"limit": "-1"}},
    "huge objective": {
        "method": "POST",
        "url": "/api/slos",
        "json": {"service_id": "{service_id}", "name": "big", "objective": 1e308},
    },
    "infinite objective": {
        "method": "POST",
        "url": "/api/slos",
        "content": b'{"service_id": "{service_id}", "name": "inf", "objective": 1e400}',
    },
    "NaN budget": {
        "method": "POST",
        "url": "/api/slos",
        "content": b'{"service_id": "{service_id}", "name": "nan", "objective": 99,'
        b' "error_budget_remaining": NaN}',
    },
    "huge window": {
        "method": "POST",
        "url": "/api/slos",
        "json": {"service_id": "{service_id}", "name": "w", "objective": 99, "window_days": 10**30},
    },
    "integer of 5000 digits": {
        "method": "POST",
        "url": "/api/slos",
        "content": b'{"service_id": "{service_id}", "name": "d", "objective": 99, "window_days": '
        + b"9" * 5000
        + b"}",
    },
    # NUL bytes.
    "NUL in a name": {"method": "POST", "url": "/api/services", "json": {"name": "pay\x00ment"}},
    "NUL in an update": {
        "method": "PATCH",
        "url": "/api/incidents/{incident_id}",
        "json": {"root_cause": "pool\x00exhausted"},
    },
    "NUL in metadata": {
        "method": "POST",
        "url": "/api/incidents/{incident_id}/timeline",
        "json": {"type": "note", "title": "x", "metadata": {"k\x00": "v"}},
    },
    "NUL in a text filter": {"method": "GET", "url": "/api/incidents", "params": {"q": "a\x00b"}},
    "NUL in a team filter": {"method": "GET", "url": "/api/services", "params": {"team": "\x00"}},
    "NUL in the path": {"method": "GET", "url": "/api/services/%00"},
    # Lone surrogates cannot be encoded as UTF-8 by any driver.
    "lone surrogate in a title": {
        "method": "POST",
        "url": "/api/incidents",
        "content": b'{"title": "down \\ud800 now"}',
    },
    "lone surrogate in a filter": {
        "method": "GET",
        "url": "/api/incidents",
        "params": {"q": "%ED%A0%80"},
    },
    # Deep nesting.
    "deeply nested JSON body": {
        "method": "POST",
        "url": "/api/incidents",
        "content": b"[" * 100_000 + b"]" * 100_000,
    },
    "deeply nested metadata": {
        "method": "POST",
        "url": "/api/incidents/{incident_id}/timeline",
        "json": {"type": "note", "title": "x", "metadata": _nested(200)},
    },
    # Bytes that are not UTF-8.
    "invalid UTF-8 body": {
        "method": "POST",
        "url": "/api/services",
        "content": b'{"name": "\xff\xfe\xfd"}',
    },
    "invalid UTF-8 body on update": {
        "method": "PATCH",
        "url": "/api/incidents/{incident_id}",
        "content": b"\xc3\x28\xa0\xa1",
    },
    # Arrays where objects are expected, and other wrong shapes.
    "array instead of an incident": {
        "method": "POST",
        "url": "/api/incidents",
        "json": [{"title": "Down"}],
    },
    "array instead of an update": {
        "method": "PATCH",
        "url": "/api/services/{service_id}",
        "json": [{"name": "renamed"}],
    },
    "array instead of metadata": {
        "method": "POST",
        "url": "/api/incidents/{incident_id}/timeline",
        "json": {"type": "note", "title": "x", "metadata": ["a", "b"]},
    },
    "object instead of service_ids": {
        "method": "POST",
        "url": "/api/incidents",
        "json": {"title": "Down", "service_ids": {"id": "{service_id}"}},
    },
    "string instead of a body": {"method": "POST", "url": "/api/services", "json": "payment"},
    "JSON null as the body": {"method": "POST", "url": "/api/incidents", "content": b"null"},
    "overlong title": {"method": "POST", "url": "/api/incidents", "json": {"title": "x" * 501}},
    "overlong actor header": {
        "method": "PATCH",
        "url": "/api/incidents/{incident_id}",
        "json": {},
        "headers": {"x-actor": "a" * 10_000},
    },
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    """`value` with `{service_id}` and `{incident_id}` replaced by real ids."""
    if isinstance(value, str):
        for name, real in ids.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, bytes):
        for name, real in ids.items():
            value = value.replace(b"{" + name.encode() + b"}", real.encode())
        return value
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


@pytest.mark.parametrize("case", list(HOSTILE_REQUESTS), ids=list(HOSTILE_REQUESTS))
def test_hostile_input_is_never_a_server_error_and_leaves_data_intact(
    client: TestClient, case: str
) -> None:
    service = create_service(client, name="payment-service", team="payments-team")
    incident = create_incident(client, service_ids=[service["id"]])
    ids = {"service_id": service["id"], "incident_id": incident["id"]}
    request = _fill(HOSTILE_REQUESTS[case], ids)
    if "content" in request:
        request.setdefault("headers", {})["content-type"] = "application/json"

    response = client.request(**request)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    assert client.get(f"/api/services/{service['id']}").json() == service
    assert client.get(f"/api/incidents/{incident['id']}").json()["title"] == incident["title"]
    listed = client.get("/api/services", params={"limit": 500}).json()["items"]
    assert service in listed
    incidents = client.get("/api/incidents").json()["items"]
    assert [item["id"] for item in incidents] == [incident["id"]]


def test_injection_text_in_a_filter_matches_literally(client: TestClient) -> None:
    create_incident(client, title="Payment Service Down")
    tricky = create_incident(client, title=f"Login broken by {INJECTION}")
    found = client.get("/api/incidents", params={"q": INJECTION}).json()["items"]
    assert [item["id"] for item in found] == [tricky["id"]]


def test_injection_text_in_a_field_is_stored_verbatim(client: TestClient) -> None:
    created = create_service(client, name=DROP_TABLE)
    assert client.get(f"/api/services/{created['id']}").json()["name"] == DROP_TABLE
    assert client.get("/api/services").status_code == 200
