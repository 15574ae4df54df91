"""The Python floor of the read scenarios: their queries and their JSON, and nothing else.

A raw ASGI app (no framework, no ORM, no authentication, no validation) on the same uvicorn
settings as `serve`, with an asyncpg pool. `GET /api/incidents/{id}` answers one incident
with its services (one statement, as the server's), as the get scenario asks; any other
path answers the page `?status=open&severity=critical&limit=50` asks for: the page of
incidents, then their services. Both encoded by orjson. No Python program can do these
requests' work for less, so their rates say what share of the bare ASGI ceiling each read
can reach here at all.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import asyncpg
import orjson

PAGE = """SELECT * FROM incidents WHERE organization_id = $1 AND status = 'open'
          AND severity = 'critical' ORDER BY created_at DESC, id DESC LIMIT 51"""
SERVICES = """SELECT incident_services.incident_id, services.id, services.name
              FROM incident_services JOIN services ON services.id = incident_services.service_id
              WHERE incident_services.incident_id = ANY($1::uuid[]) ORDER BY services.name"""
ONE = """SELECT incidents.*, services.id AS service_id, services.name AS service_name
         FROM incidents
         LEFT JOIN incident_services ON incident_services.incident_id = incidents.id
         LEFT JOIN services ON services.id = incident_services.service_id
         WHERE incidents.id = $1 AND incidents.organization_id = $2 ORDER BY services.name"""
SERVICE_COLUMNS = ("service_id", "service_name")
ONE_PREFIX = "/api/incidents/"
HEADERS = [(b"content-type", b"application/json")]
state: dict[str, Any] = {}


async def _page() -> bytes:
    pool: asyncpg.Pool = state["pool"]
    async with pool.acquire() as connection:
        rows = await connection.fetch(PAGE, state["organization_id"])
        ids = [row["id"] for row in rows[:50]]
        linked: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for incident_id, service_id, name in await connection.fetch(SERVICES, ids):
            linked[incident_id].append({"id": str(service_id), "name": name})
    items = []
    for row in rows[:50]:
        item = {key: (str(value) if key.endswith("id") else value) for key, value in row.items()}
        item["services"] = linked[row["id"]]
        items.append(item)
    return orjson.dumps({"items": items, "next_cursor": None}, option=orjson.OPT_UTC_Z)


async def _one(incident_id: str) -> bytes:
    pool: asyncpg.Pool = state["pool"]
    async with pool.acquire() as connection:
        rows = await connection.fetch(ONE, incident_id, state["organization_id"])
    if not rows:
        raise LookupError(incident_id)
    item = {
        key: (str(value) if key.endswith("id") else value)
        for key, value in rows[0].items()
        if key not in SERVICE_COLUMNS
    }
    item["services"] = [
        {"id": str(row["service_id"]), "name": row["service_name"]}
        for row in rows
        if row["service_id"] is not None
    ]
    return orjson.dumps(item, option=orjson.OPT_UTC_Z)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """One incident or the list page, by path; the lifespan opens and closes the pool."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                state["pool"] = await asyncpg.create_pool(
                    os.environ["BENCH_FLOOR_DSN"], min_size=10, max_size=20
                )
                state["organization_id"] = os.environ["BENCH_FLOOR_ORGANIZATION"]
            await send({"type": "lifespan.startup.complete"})
        await state["pool"].close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    body = await (_one(path[len(ONE_PREFIX) :]) if path.startswith(ONE_PREFIX) else _page())
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
