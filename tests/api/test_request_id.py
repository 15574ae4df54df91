"""Specification of `X-Request-ID`: echoed when safe, generated otherwise, on every response."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_problem

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def test_a_supplied_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc-123.def_456:789"})
    assert response.headers["x-request-id"] == "abc-123.def_456:789"


def test_a_request_id_is_generated_when_none_is_supplied(client: TestClient) -> None:
    response = client.get("/health")
    assert GENERATED.match(response.headers["x-request-id"])


def test_each_request_gets_its_own_generated_id(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "unsafe",
    [
        "a" * 500,
        "has spaces",
        "line\r\nX-Injected: 1",
        "tab\there",
        "<script>alert(1)</script>",
        "",
    ],
    ids=["500 chars", "spaces", "CRLF", "tab", "markup", "empty"],
)
def test_an_unsafe_request_id_is_replaced_by_a_generated_one(
    client: TestClient, unsafe: str
) -> None:
    # httpx refuses to send CR/LF in a header, so the raw header bytes are used.
    response = client.get("/health", headers=[(b"x-request-id", unsafe.encode())])
    echoed = response.headers["x-request-id"]
    assert echoed != unsafe
    assert GENERATED.match(echoed)
    assert "x-injected" not in response.headers


def test_the_request_id_is_on_error_responses_and_in_the_problem(client: TestClient) -> None:
    response = client.get("/api/incidents/not-a-uuid", headers={"X-Request-ID": "req-42"})
    problem = assert_problem(response, 422)
    assert response.headers["x-request-id"] == "req-42"
    assert problem["request_id"] == "req-42"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/no-such-thing", 404),
        ("PUT", "/api/incidents", 405),
        ("GET", "/api/incidents/00000000-0000-4000-8000-0000000000ff", 404),
        ("POST", "/api/services", 415),
    ],
)
def test_a_generated_request_id_equals_the_one_in_the_problem(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, content=b"x", headers={"content-type": "text/plain"})
    problem = assert_problem(response, status)
    assert GENERATED.match(response.headers["x-request-id"])
    assert problem["request_id"] == response.headers["x-request-id"]


def test_the_request_id_header_appears_once(client: TestClient) -> None:
    response = client.get("/api/no-such-thing", headers={"X-Request-ID": "once"})
    assert response.headers.get_list("x-request-id") == ["once"]


def test_the_request_id_is_readable_by_browsers(client: TestClient) -> None:
    response = client.get(
        "/health", headers={"Origin": "http://localhost:3000", "X-Request-ID": "cors-1"}
    )
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
