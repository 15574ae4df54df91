"""Fixtures of the alert specifications: an app whose correlator runs, and a way to wait
until it has caught up."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings

CORRELATION_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of an app whose background correlator runs (polling often)."""
    live = settings.model_copy(
        update={"alert_correlation_enabled": True, "alert_correlation_poll_seconds": 0.05}
    )
    with TestClient(create_app(live)) as test_client:
        yield test_client


def wait_for_correlation(client: TestClient) -> None:
    """Return once the correlator has acted on every alert's latest state."""
    deadline = time.monotonic() + CORRELATION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        pending = client.get("/api/alerts", params={"correlated": "false", "limit": 1})
        assert pending.status_code == 200, pending.text
        if not pending.json()["items"]:
            return
        time.sleep(0.02)
    raise AssertionError(f"alerts still uncorrelated after {CORRELATION_TIMEOUT_SECONDS} s")
