"""Specification of `/health`: 200 while the database answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from reliability_studio import __version__
from reliability_studio.config import Settings


def test_health_is_200_with_the_database_ok(client: TestClient, settings: Settings) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["checks"]["database"] == {"status": "ok", "backend": settings.database.backend}


def test_health_never_carries_retry_after_when_healthy(client: TestClient) -> None:
    assert "retry-after" not in client.get("/health").headers
