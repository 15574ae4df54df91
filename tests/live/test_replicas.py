"""Specification of the live stream across processes on one PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from tests.live.conftest import LiveServer, add_note, create_incident, fetch_value
from tests.support.postgres import PostgresServer
from tests.support.served import serving, working


def fresh_database(
    postgres_server: PostgresServer, name: str, tmp_path: Path, *folders: str
) -> dict[str, str]:
    """A new migrated database, a working folder per process, and the settings of processes
    that use it with nothing but the API and the correlator running."""
    postgres_server.create_database(name)
    url = postgres_server.url(name)
    upgrade_to_head(Settings(database_url=url))
    for folder in folders:
        (tmp_path / folder).mkdir()
    return {"SLO_ENGINE_ENABLED": "false", "ANALYSIS_ENABLED": "false", "DATABASE_URL": url}


def test_a_change_made_through_one_replica_reaches_a_client_of_another(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    quiet = fresh_database(postgres_server, "live_replicas", tmp_path, "a", "b")
    with serving(tmp_path / "a", **quiet) as first, serving(tmp_path / "b", **quiet) as second:
        for replica in (first, second):
            _wait_until_live(replica.base_url)
        incident_id = create_incident(LiveServer(second.base_url), "Checkout errors")
        ws_url = first.base_url.replace("http://", "ws://") + f"/api/ws?incident_id={incident_id}"
        with connect(ws_url, open_timeout=5) as client:
            assert json.loads(client.recv(timeout=5))[0]["type"] == "subscribed"
            posted = time.monotonic()
            event_id = add_note(LiveServer(second.base_url), incident_id, "From replica B")
            while True:
                frame = json.loads(client.recv(timeout=max(0.01, posted + 1.0 - time.monotonic())))
                if any(event.get("id") == event_id for event in frame):
                    break
            assert time.monotonic() - posted < 1.0


def test_an_incident_the_worker_opens_reaches_a_client_of_the_api(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    quiet = fresh_database(postgres_server, "live_worker", tmp_path, "api", "worker")
    api_only = {**quiet, "ALERT_CORRELATION_ENABLED": "false"}  # only the worker correlates
    with serving(tmp_path / "api", **api_only) as api, working(tmp_path / "worker", **quiet):
        _wait_until_live(api.base_url)
        ws_url = api.base_url.replace("http://", "ws://") + "/api/ws"
        with connect(ws_url, open_timeout=5) as client:
            assert json.loads(client.recv(timeout=5))[0]["type"] == "subscribed"
            response = httpx.post(
                f"{api.base_url}/api/alerts",
                json={"title": "HighErrorRate", "labels": {"alertname": "HighErrorRate"}},
            )
            assert response.status_code == 201, response.text
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                frame = json.loads(client.recv(timeout=max(0.01, deadline - time.monotonic())))
                opened = [e for e in frame if e["type"] == "incident.created"]
                if opened:
                    break
    assert opened[0]["data"]["title"]


def _wait_until_live(base_url: str) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(f"{base_url}/health").json()["checks"]["live"]["status"] != "ok":
        assert time.monotonic() < deadline, "the live stream did not come up"
        time.sleep(0.05)


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_clients_are_told_to_resync_after_the_listener_reconnects(
    live_server: LiveServer, settings: Settings
) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    with live_server.ws(f"?incident_id={incident_id}") as client:
        asyncio.run(_terminate_listeners(settings))
        client.wait_for(lambda e: e["type"] == "resync")
        event_id = add_note(live_server, incident_id, "After the reconnect")
        client.wait_for(lambda e: e.get("id") == event_id)


async def _terminate_listeners(settings: Settings) -> None:
    ended = await fetch_value(
        settings,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'reliability-studio-live'",
    )
    assert ended >= 1
