"""Specification of a PostgreSQL outage: 503 with Retry-After while it is down, then recovery.

The test runs its own PostgreSQL server, so that stopping it disturbs no other test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from tests.support.api import assert_problem, create_incident
from tests.support.postgres import PostgresServer, free_port

RECOVERY_SECONDS = 5.0


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, durable so that a crash loses no commit."""
    server = PostgresServer(durable=True)
    server.start()
    try:
        server.create_database("outage")
        yield server
    finally:
        server.stop(mode="immediate")
        server.remove()


@pytest.fixture
def outage_client(own_postgres: PostgresServer) -> Iterator[TestClient]:
    """The app on the dedicated server, with one incident stored and /health answered."""
    settings = Settings(database_url=own_postgres.url("outage"), db_connect_timeout_seconds=2.0)
    upgrade_to_head(settings)
    with TestClient(create_app(settings)) as client:
        create_incident(client, title="Before the outage")
        assert client.get("/health").status_code == 200
        yield client


def _wait_for_health(client: TestClient, timeout: float) -> float:
    """Seconds until /health answers 200; fails after `timeout`."""
    started = time.monotonic()
    while True:
        response = client.get("/health")
        elapsed = time.monotonic() - started
        if response.status_code == 200:
            return elapsed
        assert elapsed < timeout, f"/health still {response.status_code}: {response.text}"
        time.sleep(0.1)


def test_while_postgres_is_down_health_is_503_with_retry_after(
    outage_client: TestClient, own_postgres: PostgresServer
) -> None:
    own_postgres.stop()
    health = outage_client.get("/health")
    assert health.status_code == 503
    assert int(health.headers["retry-after"]) > 0
    assert health.json()["status"] == "unavailable"
    assert health.json()["checks"]["database"]["status"] == "unavailable"


def test_while_postgres_is_down_api_calls_are_503_problems_and_serving_goes_on(
    outage_client: TestClient, own_postgres: PostgresServer
) -> None:
    [incident] = outage_client.get("/api/incidents").json()["items"]
    own_postgres.stop()
    during_outage = [
        ("GET", "/api/incidents", None),
        ("GET", f"/api/incidents/{incident['id']}", None),
        ("POST", "/api/incidents", {"title": "During", "severity": "low"}),
        ("PATCH", f"/api/incidents/{incident['id']}", {"status": "investigating"}),
        ("GET", "/api/services", None),
        ("GET", "/api/incidents", None),  # again: one failure does not break the next
    ]
    for method, path, body in during_outage:
        response = outage_client.request(method, path, json=body)
        problem = assert_problem(response, 503)
        assert problem["title"] == "Database unavailable"
        assert int(response.headers["retry-after"]) > 0
        assert problem["request_id"] == response.headers["x-request-id"]
    assert outage_client.get("/metrics").status_code == 200
    assert assert_problem(outage_client.get("/api/no-such-thing"), 404)


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["clean stop", "crash"])
def test_after_postgres_comes_back_health_and_the_api_recover_within_5_seconds(
    outage_client: TestClient, own_postgres: PostgresServer, mode: str
) -> None:
    own_postgres.stop(mode=mode)
    assert outage_client.get("/health").status_code == 503
    assert outage_client.get("/api/incidents").status_code == 503

    own_postgres.start()

    assert _wait_for_health(outage_client, RECOVERY_SECONDS) < RECOVERY_SECONDS
    listed = outage_client.get("/api/incidents")
    assert listed.status_code == 200, listed.text
    assert [item["title"] for item in listed.json()["items"]] == ["Before the outage"]
    after = create_incident(outage_client, title="After the outage")
    assert outage_client.get(f"/api/incidents/{after['id']}").status_code == 200


def test_the_metrics_count_the_503s_of_an_outage(
    outage_client: TestClient, own_postgres: PostgresServer
) -> None:
    own_postgres.stop()
    outage_client.get("/api/incidents")
    metrics = outage_client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/api/incidents",status="503"} 1.0' in metrics


@pytest.mark.parametrize(
    "make_url",
    [
        lambda server: f"postgres://postgres@127.0.0.1:{free_port()}/x?sslmode=disable",
        lambda server: "postgres://postgres@db.invalid:5432/x?sslmode=disable",
        lambda server: server.url("no_such_database"),
        lambda server: server.url("postgres").replace("postgres@", "no_such_role@"),
    ],
    ids=["nothing listening", "unresolvable host", "missing database", "missing role"],
)
def test_a_database_that_cannot_be_reached_is_503_not_500(
    postgres_server: PostgresServer,
    make_url: Callable[[PostgresServer], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url=make_url(postgres_server), db_connect_timeout_seconds=2.0)
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        api = client.get("/api/services")
    assert health.status_code == 503
    assert "retry-after" in health.headers
    assert_problem(api, 503)
    assert "retry-after" in api.headers
    assert "unhandled exception" not in caplog.text
    assert "database unavailable" in caplog.text
