"""Helpers shared by the incident, timeline and task specifications."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from reliability_studio.db.base import Base
from reliability_studio.incidents import create_pg
from reliability_studio.incidents import service as incidents_service
from reliability_studio.tasks import service as tasks_service
from reliability_studio.timeline import service as timeline_service

M = TypeVar("M", bound=Base)


@dataclass
class Clock:
    """A clock the service layers read instead of the real one; it moves only when told."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def install_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze `utcnow` of the incident, timeline and task services at 2030-01-01T12:00Z."""
    clock = Clock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    for module in (incidents_service, create_pg, timeline_service, tasks_service):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from a response, which must carry its offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def timeline_events(client: TestClient, incident_id: str, **params: Any) -> list[dict[str, Any]]:
    """The incident's timeline events (up to 500), oldest first."""
    response = client.get(f"/api/incidents/{incident_id}/timeline", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def events_of_type(client: TestClient, incident_id: str, type_: str) -> list[dict[str, Any]]:
    """The incident's timeline events of one type."""
    return [e for e in timeline_events(client, incident_id) if e["type"] == type_]


def count_rows(client: TestClient, model: type[Base]) -> int:
    """How many rows the table of `model` holds, read straight from the app's database."""
    app = cast(FastAPI, client.app)

    async def count() -> int:
        async with app.state.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    assert client.portal is not None, "use the client inside its context manager"
    return client.portal.call(count)


def rows_of(client: TestClient, model: type[M]) -> list[M]:
    """Every row of the table of `model`, read straight from the app's database."""
    app = cast(FastAPI, client.app)

    async def read() -> list[M]:
        async with app.state.sessionmaker() as session:
            return list((await session.scalars(select(model))).all())

    assert client.portal is not None, "use the client inside its context manager"
    return client.portal.call(read)


@contextmanager
def statements_sent(client: TestClient) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs, whitespace collapsed: each
    is a round trip, which under load is a turn of a busy event loop."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = cast(FastAPI, client.app).state.engine
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
