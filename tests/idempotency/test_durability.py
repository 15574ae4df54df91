"""Specification: keys are recorded without waiting for the disk, and that never weakens
the durability of anything else.

The bookkeeping commits relax `synchronous` (SQLite, per connection) or
`synchronous_commit` (PostgreSQL, per transaction); every pooled connection must come back
as the engine configured it, or the next request's write would be acknowledged before it
is on disk.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.idempotency.helpers import keyed

INCIDENT = {"title": "Checkout down", "severity": "high"}
# SQLite: `synchronous` as the engine sets it (FULL, 2). PostgreSQL: `synchronous_commit`
# as the server is configured, i.e. not overridden for the session (`SET LOCAL` ends with
# its transaction; a `SET` would outlive it).
DURABILITY = {
    "sqlite": "PRAGMA synchronous",
    "postgresql": "SELECT source FROM pg_settings WHERE name = 'synchronous_commit'",
}


async def _durability_of_idle_connections(engine: AsyncEngine) -> set[str]:
    """The durability setting of every connection idle in the pool (all checked out at
    once, so that each is seen)."""
    pool: Any = engine.pool
    connections: list[AsyncConnection] = []
    try:
        for _ in range(max(pool.checkedin(), 1)):
            connections.append(await engine.connect())
        query = DURABILITY[engine.dialect.name]
        return {str((await c.exec_driver_sql(query)).scalar()) for c in connections}
    finally:
        for connection in connections:
            await connection.close()


def test_recording_keys_leaves_every_connection_as_durable_as_configured(
    client: TestClient,
) -> None:
    for _ in range(3):
        headers = keyed()
        for _ in range(2):  # reserved and completed, then replayed
            assert client.post("/api/incidents", json=INCIDENT, headers=headers).status_code == 201
    engine: AsyncEngine = client.app.state.engine  # type: ignore[attr-defined]
    assert client.portal is not None

    durability = client.portal.call(_durability_of_idle_connections, engine)

    if engine.dialect.name == "sqlite":
        assert durability == {"2"}
    else:
        assert "session" not in durability, durability
