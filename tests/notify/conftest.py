"""Helpers of the notification outbox specification: apps with and without the dispatcher,
a receiver that never answers, ways to wait for the notification log, and what the tests of
real `serve` and `worker` processes on PostgreSQL share."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.notify.models import Notification
from tests.support.postgres import PostgresServer, free_port

NOTIFICATIONS = "/api/notifications"
CHANNELS = "/api/notification-channels"
POLICIES = "/api/notification-policies"
WAIT_SECONDS = 10.0
# The dispatcher as the tests run it: polling often, retrying fast, giving up soon.
LIVE: dict[str, Any] = {
    "notify_enabled": True,
    "notify_poll_seconds": 0.05,
    "notify_max_attempts": 3,
    "notify_backoff_base_seconds": 0.05,
    "notify_backoff_max_seconds": 0.2,
}


# A `serve` or `worker` process of these tests: the dispatcher, polling often, and no other job
# (no Prometheus answers on port 1).
PROCESS_SETTINGS = {
    "SLO_ENGINE_ENABLED": "false",
    "ALERT_CORRELATION_ENABLED": "false",
    "ANALYSIS_ENABLED": "false",
    "PROMETHEUS_URL": "http://127.0.0.1:1",
    "NOTIFY_ENABLED": "true",
    "NOTIFY_POLL_SECONDS": "0.05",
}


def new_postgres_database(server: PostgresServer, prefix: str) -> str:
    """The URL of a new, empty database on `server` (the processes migrate it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server.create_database(name)
    return server.url(name)


def outbox(database_url: str) -> dict[str, tuple[str, int]]:
    """Every notification row, read straight from the database: id -> (status, attempts)."""

    async def read() -> dict[str, tuple[str, int]]:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(Notification.id, Notification.status, Notification.attempts)
                )
                return {str(id_): (status, attempts) for id_, status, attempts in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def live(settings: Settings, **changes: Any) -> Settings:
    """`settings` with the dispatcher on (see LIVE), plus `changes`."""
    return settings.model_copy(update={**LIVE, **changes})


def quiet(settings: Settings) -> Settings:
    """`settings` with the dispatcher off: notifications are written, never sent."""
    return settings.model_copy(update={"notify_enabled": False})


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A client of a new app for `settings`, lifespan (and so the dispatcher) included."""
    with TestClient(create_app(settings)) as client:
        yield client


def list_notifications(client: TestClient, **filters: Any) -> list[dict[str, Any]]:
    """GET /api/notifications with `filters` (one page of up to 100)."""
    response = client.get(NOTIFICATIONS, params={"limit": 100, **filters})
    assert response.status_code == 200, response.text
    page = response.json()
    assert set(page) == {"items", "next_cursor"}, page
    items: list[dict[str, Any]] = page["items"]
    return items


def wait_for_notifications(
    client: TestClient,
    done: Callable[[list[dict[str, Any]]], bool],
    what: str,
    *,
    timeout: float = WAIT_SECONDS,
    **filters: Any,
) -> list[dict[str, Any]]:
    """The notification log (with `filters`) once `done(items)` holds; fails after `timeout`
    seconds, showing `what` was awaited and the log as last seen."""
    deadline = time.monotonic() + timeout
    while True:
        items = list_notifications(client, **filters)
        if done(items):
            return items
        if time.monotonic() > deadline:
            summary = [
                {key: item.get(key) for key in ("event", "channel_name", "status", "attempts")}
                | {"last_error": item.get("last_error")}
                for item in items
            ]
            raise AssertionError(f"not within {timeout:.0f} s: {what}; the log shows {summary}")
        time.sleep(0.02)


def all_in(status: str, count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """A `done` for `wait_for_notifications`: exactly `count` rows, every one in `status`."""
    return lambda items: len(items) == count and all(i["status"] == status for i in items)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Return once `condition()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.01)


def create_channel(client: TestClient, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """POST /api/notification-channels."""
    response = client.post(CHANNELS, json={"name": name, "config": config})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_policy(
    client: TestClient, channels: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """POST /api/notification-policies sending `fields["events"]` to `channels`."""
    body = {
        "name": f"policy-{uuid.uuid4().hex[:8]}",
        "events": ["incident.created"],
        "channel_ids": [channel["id"] for channel in channels],
        **fields,
    }
    response = client.post(POLICIES, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class HangingReceiver:
    """An HTTP server on 127.0.0.1 that reads every request and never answers it (until the
    block ends). `requests` counts the requests it has taken."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hang"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.requests += 1
                receiver._release.wait(60)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler

    def __enter__(self) -> HangingReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
