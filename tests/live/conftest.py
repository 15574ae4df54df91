"""Helpers of the live stream specification: an app on a real socket, and a WebSocket
client that waits for events with a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.threaded_server import served_in_thread

WAIT_SECONDS = 5.0
Event = dict[str, Any]


class LiveClient:
    """A WebSocket client of `/api/ws` that keeps every event it has received."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[Event] = []

    def frame(self, timeout: float = WAIT_SECONDS) -> list[Event]:
        """The next frame (a JSON array of events)."""
        frame = json.loads(self.connection.recv(timeout=timeout))
        assert isinstance(frame, list), frame
        self.received.extend(frame)
        return frame

    def wait_for(self, wanted: Callable[[Event], bool], timeout: float = WAIT_SECONDS) -> Event:
        """The first event (received from now on) for which `wanted` holds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such event in {timeout} s; got {self.received}")
            try:
                frame = self.frame(timeout=left)
            except TimeoutError:
                continue
            for event in frame:
                if wanted(event):
                    return event

    def quiet_for(self, seconds: float) -> list[Event]:
        """Every event received within `seconds` (to show that nothing came)."""
        events: list[Event] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                events.extend(self.frame(timeout=left))
            except TimeoutError:
                break
        return events

    def send(self, message: dict[str, Any]) -> None:
        """Send a command (`subscribe`, `ping`)."""
        self.connection.send(json.dumps(message))


class LiveServer:
    """An app on a real socket: its HTTP client and a way to open live clients."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    @contextmanager
    def ws(self, query: str = "") -> Iterator[LiveClient]:
        """A live client, its subscription confirmed (so later changes reach it)."""
        url = self.base_url.replace("http://", "ws://") + "/api/ws" + query
        with connect(url, open_timeout=WAIT_SECONDS) as connection:
            client = LiveClient(connection)
            confirmation = client.frame()
            assert confirmation[0]["type"] == "subscribed", confirmation
            yield client


def serve_app(settings: Settings, send_buffer_bytes: int | None = None) -> Iterator[LiveServer]:
    """`create_app(settings)` on a real socket until the generator is closed."""
    with served_in_thread(create_app(settings), send_buffer_bytes) as base_url:
        server = LiveServer(base_url)
        wait_until_live(server)
        try:
            yield server
        finally:
            server.http.close()


def wait_until_live(server: LiveServer, timeout: float = WAIT_SECONDS) -> None:
    """Wait until `/health` says the live stream is ok (the listener is connected)."""
    deadline = time.monotonic() + timeout
    while True:
        live = server.http.get("/health").json()["checks"]["live"]
        if live["status"] == "ok":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the live stream did not come up: {live}")
        time.sleep(0.05)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app for `settings` (each backend) on a real socket."""
    yield from serve_app(settings)


def create_service(server: LiveServer, name: str) -> str:
    """A new catalog service; its id."""
    response = server.http.post("/api/services", json={"name": name})
    assert response.status_code == 201, response.text
    service_id: str = response.json()["id"]
    return service_id


def create_incident(server: LiveServer, title: str, *service_ids: str) -> str:
    """A new incident linked to `service_ids`; its id."""
    response = server.http.post(
        "/api/incidents",
        json={"title": title, "severity": "high", "service_ids": list(service_ids)},
    )
    assert response.status_code == 201, response.text
    incident_id: str = response.json()["id"]
    return incident_id


def add_note(server: LiveServer, incident_id: str, title: str) -> str:
    """A note on the incident's timeline; its id."""
    response = server.http.post(
        f"/api/incidents/{incident_id}/timeline", json={"type": "note", "title": title}
    )
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


async def fetch_value(settings: Settings, sql: str, *arguments: object) -> Any:
    """The first value of `sql`, on a connection of its own to the settings' PostgreSQL."""
    url = settings.database.url
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        return await connection.fetchval(sql, *arguments)
    finally:
        await connection.close()
