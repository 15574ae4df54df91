"""Specification of the API description: `/openapi.json` and `/docs`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio import __version__


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def test_openapi_describes_the_api_and_its_version(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "Reliability Studio"
    assert openapi["info"]["version"] == __version__


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/incidents", "get"),
        ("/api/incidents", "post"),
        ("/api/incidents/{incident_id}", "get"),
        ("/api/incidents/{incident_id}", "patch"),
        ("/api/incidents/{incident_id}/timeline", "get"),
        ("/api/incidents/{incident_id}/timeline", "post"),
        ("/api/services", "get"),
        ("/api/services", "post"),
        ("/api/services/{service_id}", "get"),
        ("/api/services/{service_id}/incidents", "get"),
        ("/api/slos", "get"),
        ("/api/slos", "post"),
        ("/api/slos/{slo_id}", "patch"),
        ("/health", "get"),
    ],
)
def test_openapi_documents_the_seed_endpoints(
    openapi: dict[str, Any], path: str, method: str
) -> None:
    assert method in openapi["paths"][path]


@pytest.mark.parametrize(
    "path",
    ["/api/incidents", "/api/services", "/api/slos", "/api/incidents/{incident_id}/timeline"],
)
def test_lists_are_documented_as_a_page_of_items_with_a_next_cursor(
    openapi: dict[str, Any], path: str
) -> None:
    operation = openapi["paths"][path]["get"]
    schema = _resolve(
        openapi, operation["responses"]["200"]["content"]["application/json"]["schema"]
    )
    assert set(schema["required"]) >= {"items", "next_cursor"}
    assert schema["properties"]["items"]["type"] == "array"
    next_cursor = schema["properties"]["next_cursor"]
    assert {"type": "null"} in next_cursor["anyOf"]
    assert {"type": "string"} in next_cursor["anyOf"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    assert {"limit", "cursor"} <= parameters


def test_errors_are_documented_as_problem_json(openapi: dict[str, Any]) -> None:
    responses = openapi["paths"]["/api/incidents"]["post"]["responses"]
    for status in ("404", "409", "413", "415", "422", "503"):
        assert "application/problem+json" in responses[status]["content"], status
    schema = _resolve(openapi, responses["422"]["content"]["application/problem+json"]["schema"])
    assert {"type", "title", "status", "detail", "errors", "request_id"} <= set(
        schema["properties"]
    )
    error = _resolve(openapi, schema["properties"]["errors"]["anyOf"][0]["items"])
    assert {"field", "location", "message"} <= set(error["properties"])


def test_the_list_filters_of_the_seed_are_documented(openapi: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/api/incidents"]["get"]["parameters"]}
    assert {"status", "severity"} <= set(parameters)
    status_items = _resolve(openapi, parameters["status"]["schema"]["anyOf"][0]["items"])
    assert set(status_items["enum"]) == {
        "open",
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "closed",
    }


def test_the_interactive_docs_are_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_metrics_are_left_out_of_the_api_description(openapi: dict[str, Any]) -> None:
    assert "/metrics" not in openapi["paths"]
