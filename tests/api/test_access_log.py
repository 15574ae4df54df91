"""Specification of the access log: one structured record per request."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import create_incident

ACCESS_LOGGER = "reliability_studio.access"


def _access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [record.__dict__ for record in caplog.records if record.name == ACCESS_LOGGER]


def test_each_request_logs_one_record_with_method_route_status_duration_and_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    incident = create_incident(client)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get(f"/api/incidents/{incident['id']}", headers={"X-Request-ID": "log-1"})
    [record] = _access_records(caplog)
    assert record["levelname"] == "INFO"
    assert record["method"] == "GET"
    assert record["route"] == "/api/incidents/{incident_id}"
    assert record["path"] == f"/api/incidents/{incident['id']}"
    assert record["status"] == 200
    assert record["request_id"] == "log-1"
    assert isinstance(record["duration_ms"], float)
    assert 0 <= record["duration_ms"] < 10_000


def test_the_route_is_the_template_of_nested_routes(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    incident = create_incident(client)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post(
            f"/api/incidents/{incident['id']}/timeline", json={"type": "note", "title": "Paged"}
        )
    [record] = _access_records(caplog)
    assert record["method"] == "POST"
    assert record["route"] == "/api/incidents/{incident_id}/timeline"
    assert record["status"] == 201


def test_error_responses_are_logged_with_their_status(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get("/api/incidents/not-a-uuid")
        client.post("/api/incidents", json={"title": "Down", "severity": "urgent"})
    statuses = [(record["route"], record["status"]) for record in _access_records(caplog)]
    assert statuses == [("/api/incidents/{incident_id}", 422), ("/api/incidents", 422)]


def test_an_unknown_path_is_logged_under_one_route_label(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get("/wp-admin/setup.php")
    [record] = _access_records(caplog)
    assert record["route"] == "unmatched"
    assert record["path"] == "/wp-admin/setup.php"
    assert record["status"] == 404


def test_a_generated_request_id_is_the_one_returned(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = client.get("/health")
    [record] = _access_records(caplog)
    assert record["request_id"] == response.headers["x-request-id"]


def test_a_body_refused_for_its_size_is_logged_as_413(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post(
            "/api/services",
            content=b"x" * (1024 * 1024 + 1),
            headers={"content-type": "application/json"},
        )
    [record] = _access_records(caplog)
    assert record["status"] == 413
