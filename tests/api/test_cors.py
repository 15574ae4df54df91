"""Specification of CORS: configured origins may call the API from a browser, others may not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings

CONFIGURED = "https://studio.example.com"


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=settings.database_url, cors_origins=(CONFIGURED,)))
    with TestClient(app) as client:
        yield client


def _preflight(client: TestClient, origin: str, method: str = "POST") -> dict[str, str]:
    response = client.options(
        "/api/incidents",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-request-id",
        },
    )
    return dict(response.headers) | {"status": str(response.status_code)}


def test_a_configured_origin_passes_the_preflight(cors_client: TestClient) -> None:
    headers = _preflight(cors_client, CONFIGURED)
    assert headers["status"] == "200"
    assert headers["access-control-allow-origin"] == CONFIGURED
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()


def test_a_configured_origin_may_patch(cors_client: TestClient) -> None:
    headers = _preflight(cors_client, CONFIGURED, method="PATCH")
    assert headers["access-control-allow-origin"] == CONFIGURED
    assert "PATCH" in headers["access-control-allow-methods"]


def test_an_unconfigured_origin_gets_no_allow_origin(cors_client: TestClient) -> None:
    headers = _preflight(cors_client, "https://evil.example.net")
    assert "access-control-allow-origin" not in headers
    assert headers["status"] == "400"


def test_a_simple_request_from_an_unconfigured_origin_gets_no_allow_origin(
    cors_client: TestClient,
) -> None:
    response = cors_client.get("/api/incidents", headers={"Origin": "https://evil.example.net"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_a_simple_request_from_a_configured_origin_can_read_location_and_request_id(
    cors_client: TestClient,
) -> None:
    response = cors_client.post(
        "/api/services", json={"name": "web"}, headers={"Origin": CONFIGURED}
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == CONFIGURED
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"location", "x-request-id"} <= exposed


def test_the_default_origins_include_the_local_frontend(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    assert "http://localhost:3000" in Settings().cors_origins
    headers = _preflight(client, "http://localhost:3000")
    assert headers["access-control-allow-origin"] == "http://localhost:3000"


def test_error_responses_carry_cors_headers_for_a_configured_origin(
    cors_client: TestClient,
) -> None:
    response = cors_client.get("/api/incidents/not-a-uuid", headers={"Origin": CONFIGURED})
    assert response.status_code == 422
    assert response.headers["access-control-allow-origin"] == CONFIGURED
