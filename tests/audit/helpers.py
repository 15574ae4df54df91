"""Helpers of the audit log specifications: reading the log over the API and straight from
the database, and writing with an actor bound, or none, as a background job does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.audit.models import AuditEntry
from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.identity.context import Actor, current_actor
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

AUDIT = "/api/audit"


def audit_entries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """The first 500 entries `GET /api/audit` serves for `params`, newest first."""
    response = client.get(AUDIT, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    page = response.json()
    assert set(page) == {"items", "next_cursor"}, page
    items: list[dict[str, Any]] = page["items"]
    return items


def only_entry(client: TestClient, **params: Any) -> dict[str, Any]:
    """The one entry listed for `params`."""
    entries = audit_entries(client, **params)
    assert len(entries) == 1, entries
    return entries[0]


def as_actor(name: str, request_id: str) -> dict[str, str]:
    """Headers that name the actor and the request id of a request."""
    return {"X-Actor": name, "X-Request-ID": request_id}


def new_service(name: str | None = None) -> Service:
    """A service row, for writes made straight through a session."""
    return Service(
        id=uuid.uuid4(),
        organization_id=DEFAULT_ORGANIZATION_ID,
        name=name or f"svc-{uuid.uuid4().hex[:8]}",
    )


def write(
    settings: Settings,
    actor: Actor | None,
    scenario: Callable[[AsyncSession], Awaitable[None]],
) -> list[AuditEntry]:
    """Run `scenario` in a session of a sessionmaker of its own, with `actor` bound as the
    API binds a request's (None: nobody, as in a background job); returns every entry of
    the log afterwards, oldest first."""

    async def main() -> list[AuditEntry]:
        engine = create_engine(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            current_actor.set(actor)  # this task's context only
            async with sessionmaker() as session:
                await scenario(session)
            current_actor.set(None)
            async with sessionmaker() as session:
                query = select(AuditEntry).order_by(AuditEntry.occurred_at, AuditEntry.id)
                return list((await session.scalars(query)).all())
        finally:
            await engine.dispose()

    return asyncio.run(main())


def user(name: str = "alice", **fields: Any) -> Actor:
    """An actor as a signed-in user's request binds it."""
    values: dict[str, Any] = {
        "kind": "user",
        "name": name,
        "organization_id": DEFAULT_ORGANIZATION_ID,
        "id": f"user-{name}",
        "token_id": f"token-{name}",
        "request_id": f"req-{name}",
    }
    values.update(fields)
    return Actor(**values)
