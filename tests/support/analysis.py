"""Helpers of the analysis specifications: an app whose analysis runner works, a way to
make it look at the queue now, and a way to wait for an incident's analysis to finish."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from reliability_studio.config import Settings

# Port 1 refuses connections at once: a backend that is down, without any wait.
REFUSED = "http://127.0.0.1:1"
ANALYSIS_TIMEOUT_SECONDS = 12.0
FINISHED = ("done", "failed")


def analysis_settings(settings: Settings, **changes: Any) -> Settings:
    """The conftest backend settings with analysis on, every backend refused and Kubernetes
    off, unless `changes` say otherwise. The lookback is an hour, so that the range queries'
    step is Prometheus' 15 s floor (an hour / 300 points = 12 s)."""
    return settings.model_copy(
        update={
            "analysis_enabled": True,
            "analysis_backend_timeout_seconds": 3.0,
            "analysis_lookback_minutes": 60,
            "prometheus_url": REFUSED,
            "loki_url": REFUSED,
            "tempo_url": REFUSED,
            "kubernetes_config": "none",
            **changes,
        }
    )


def wake_analysis(client: TestClient) -> None:
    """Ask the app's runner to look at the queue now (it would otherwise poll within 2 s):
    creating an incident queues a run but does not wake the runner."""
    portal = client.portal
    assert portal is not None, "the TestClient must be entered (`with TestClient(...)`)"
    runner = getattr(client.app.state, "analysis_runner", None)  # type: ignore[attr-defined]
    assert runner is not None, "this app has no analysis runner (analysis_enabled is off?)"
    portal.call(runner.wake)


def wait_for_analysis(
    client: TestClient, incident_id: str, timeout: float = ANALYSIS_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The incident's latest analysis once it is done or failed; fails after `timeout`."""
    wake_analysis(client)
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        response = client.get(f"/api/incidents/{incident_id}/analysis")
        assert response.status_code == 200, response.text
        last = response.json()
        if last["status"] in FINISHED:
            analysis: dict[str, Any] = last
            return analysis
        time.sleep(0.05)
    raise AssertionError(
        f"the analysis of incident {incident_id} did not finish within {timeout:.0f} s; "
        f"last seen: {last}"
    )


def evidence_of(client: TestClient, incident_id: str) -> list[dict[str, Any]]:
    """Every evidence item of the incident (one page of up to 500)."""
    response = client.get(f"/api/incidents/{incident_id}/evidence", params={"limit": 500})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert page["next_cursor"] is None, "more evidence than one page"
    items: list[dict[str, Any]] = page["items"]
    return items


def timeline_of(client: TestClient, incident_id: str, *types: str) -> list[dict[str, Any]]:
    """The incident's timeline events (of `types`, when given)."""
    params: dict[str, Any] = {"limit": 500}
    if types:
        params["type"] = list(types)
    response = client.get(f"/api/incidents/{incident_id}/timeline", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
