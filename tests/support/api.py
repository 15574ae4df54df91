"""Helpers that create resources through the API, asserting that each create worked."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

_names = itertools.count(1)


def create_service(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST /api/services with a unique default name."""
    body = {"name": f"service-{next(_names)}", **fields}
    response = client.post("/api/services", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_incident(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST /api/incidents with a default title and severity."""
    body = {"title": "Payment Service Down", "severity": "critical", **fields}
    response = client.post("/api/incidents", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_slo(client: TestClient, service_id: str, **fields: Any) -> dict[str, Any]:
    """POST /api/slos for `service_id`."""
    body = {
        "service_id": service_id,
        "name": f"slo-{next(_names)}",
        "objective": 99.9,
        "window_days": 30,
        **fields,
    }
    response = client.post("/api/slos", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem+json of `status`, naming `field` when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    if field is not None:
        named = [error["field"] for error in problem.get("errors", [])]
        assert field in named, f"{field!r} not in {named}"
    return problem


def collect_pages(
    client: TestClient, path: str, limit: int, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, walked page by page with `limit` and `next_cursor`.

    Asserts that each page but the last is full and carries a cursor; returns the items
    in the order served and the number of pages.
    """
    items: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert pages <= 1_000, "pagination does not end"
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return items, pages
        assert len(page["items"]) == limit, "a page before the last must be full"
