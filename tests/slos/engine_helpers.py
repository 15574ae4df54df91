"""Shared pieces of the SLO engine tests: a Prometheus holding the known-answer dataset, apps
wired to it, SLIs for every job of the dataset, and evaluation at an exact moment.

Evaluations go through `runner.evaluate_and_store`, inside the TestClient's event loop (its
portal), at the dataset's exact `now`, so that the figures are exact (see
tests/support/slo_dataset.py for the answers and their tolerances).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.config import Settings
from reliability_studio.slos.runner import RunSummary, evaluate_and_store
from reliability_studio.telemetry.prometheus import PrometheusClient
from tests.support.api import create_service, create_slo
from tests.support.prometheus import PrometheusServer
from tests.support.slo_dataset import (
    EXPECTED,
    LATENCY_THRESHOLD,
    WINDOW_SECONDS,
    Job,
    build_dataset,
    default_now,
)

T = TypeVar("T")

# Burn-rate windows the engine reports, in the API's order.
BURN_WINDOW_NAMES = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The engine rounds percentages and burn rates to 6 decimals.
ROUNDING = 1e-6
# Wall-clock evaluations must happen within two minutes of the dataset's `now` for the
# dataset's LATE tolerances to hold.
LATE_LIMIT_SECONDS = 120


@dataclass(frozen=True)
class Dataset:
    """A started Prometheus holding `build_dataset(now)`."""

    server: PrometheusServer
    now: int

    @property
    def at(self) -> datetime:
        """The dataset's `now` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now, UTC)

    def assert_fresh(self) -> None:
        """Fail clearly if a wall-clock evaluation would be too far past `now`."""
        late = time.time() - self.now
        assert late < LATE_LIMIT_SECONDS, (
            f"the dataset ends {late:.0f} s ago; wall-clock answers are only known to "
            f"{LATE_LIMIT_SECONDS} s (the module before this test was too slow)"
        )


@contextmanager
def dataset_prometheus() -> Iterator[Dataset]:
    """A Prometheus with the known-answer dataset ending this minute; removed afterwards."""
    now = default_now()
    with PrometheusServer() as server:
        server.backfill(build_dataset(now))
        server.start()
        yield Dataset(server, now)


def engine_settings(settings: Settings, prometheus_url: str, **changes: Any) -> Settings:
    """The conftest backend settings, pointed at a real Prometheus (scheduler off by default)."""
    return settings.model_copy(
        update={"prometheus_url": prometheus_url, "slo_engine_enabled": False, **changes}
    )


# --- SLIs for the dataset's jobs ------------------------------------------------------------


def sli_for(job: Job) -> dict[str, Any]:
    """The SLI that measures `job` of the dataset (objective 99.9 %)."""
    expected = EXPECTED[job]
    if job == "latency":
        return {
            "kind": "latency",
            "histogram": 'http_request_duration_seconds_bucket{job="latency"}',
            "threshold_seconds": float(LATENCY_THRESHOLD),
        }
    if job == "probe":
        return {"kind": "bool_gauge", "metric": 'probe_success{job="probe"}'}
    return {"kind": "ratio", "errors": expected.bad, "total": expected.total}


# Bad and total events over the 30 d window at `now`, counted by hand from the dataset:
# 100 requests a minute for 43 200 minutes; 0.05 errors a minute (steady, reset); the spike
# has 0.05 a minute for 43 080 minutes and 10 a minute for the last 120; latency has 0.2 slow
# requests a minute; probe has 43 bad samples among 43 201.
EXPECTED_COUNTS: dict[Job, tuple[float, float] | None] = {
    "steady": (2_160, 4_320_000),
    "reset": (2_160, 4_320_000),
    "spike": (2_154 + 1_200, 4_320_000),
    "nodata": None,
    "latency": (8_640, 4_320_000),
    "probe": (43, 43_201),
}


def expected_exhaustion_seconds(job: Job) -> float | None:
    """Remaining budget fraction x window / burn rate(1h), by hand (DESIGN.md, SLO math)."""
    expected = EXPECTED[job]
    if expected.budget_remaining is None:
        return None
    if expected.budget_remaining <= 0:
        return 0.0
    burn = expected.burn_rates["1h"]
    if burn == 0:
        return None  # nothing burns: the budget lasts forever
    return expected.budget_remaining * WINDOW_SECONDS / burn


def expected_status(job: Job) -> str:
    """The status the DESIGN's rules give `job`: breached, at_risk (alert or < 25 % left)..."""
    expected = EXPECTED[job]
    if not expected.has_data:
        return "no_data"
    assert expected.budget_remaining is not None
    if expected.breached:
        return "breached"
    if expected.pages or expected.tickets or expected.budget_remaining < 0.25:
        return "at_risk"
    return "healthy"


# --- the API --------------------------------------------------------------------------------


def new_slo(
    client: TestClient, job: Job, service_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """POST an SLO measuring `job` (on a new service unless one is given)."""
    if service_id is None:
        service_id = str(create_service(client)["id"])
    return create_slo(client, service_id, sli=sli_for(job), **fields)


def get_json(client: TestClient, path: str, **params: Any) -> Any:
    """GET `path`, asserting 200, and return the JSON body."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def get_slo(client: TestClient, slo_id: str) -> dict[str, Any]:
    """GET /api/slos/{id}."""
    body: dict[str, Any] = get_json(client, f"/api/slos/{slo_id}")
    return body


def incidents(client: TestClient) -> list[dict[str, Any]]:
    """Every incident (the tests make few)."""
    items: list[dict[str, Any]] = get_json(client, "/api/incidents", limit=500)["items"]
    return items


def timeline(client: TestClient, incident_id: str, *types: str) -> list[dict[str, Any]]:
    """An incident's timeline, oldest first, optionally of some types only."""
    params: dict[str, Any] = {"limit": 500}
    if types:
        params["type"] = list(types)
    path = f"/api/incidents/{incident_id}/timeline"
    items: list[dict[str, Any]] = get_json(client, path, **params)["items"]
    return items


def alerts(client: TestClient, slo_id: str, **params: Any) -> list[dict[str, Any]]:
    """GET /api/slos/{id}/alerts (newest first)."""
    items: list[dict[str, Any]] = get_json(client, f"/api/slos/{slo_id}/alerts", **params)["items"]
    return items


# --- running engine code in the app's event loop --------------------------------------------


def in_app(client: TestClient, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run `await function(*args)` in the TestClient's event loop (where the app's pools live)."""
    assert client.portal is not None, "use the TestClient as a context manager"
    return client.portal.call(function, *args)


def app_state(client: TestClient) -> Any:
    """The app's `state` (engine, sessionmaker, prometheus, settings, ...)."""
    assert isinstance(client.app, FastAPI)
    return client.app.state


def sessionmaker_of(client: TestClient) -> async_sessionmaker[AsyncSession]:
    """The app's session factory."""
    maker: async_sessionmaker[AsyncSession] = app_state(client).sessionmaker
    return maker


def prometheus_of(client: TestClient) -> PrometheusClient:
    """The app's Prometheus client (the engine's, with retries)."""
    prometheus: PrometheusClient = app_state(client).prometheus
    return prometheus


def evaluate_at(client: TestClient, slo_ids: list[str], at: datetime) -> RunSummary:
    """Evaluate and store the SLOs at exactly `at`, as the scheduler would."""
    prometheus = prometheus_of(client)
    settings: Settings = app_state(client).settings
    ids = [uuid.UUID(slo_id) for slo_id in slo_ids]
    return in_app(
        client, evaluate_and_store, sessionmaker_of(client), prometheus, settings, ids, at
    )


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp from the API."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def minutes(n: float) -> timedelta:
    """`n` minutes."""
    return timedelta(minutes=n)
