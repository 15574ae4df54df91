"""The Python floor of the list scenario: its two queries and its JSON, and nothing else.

A raw ASGI app (no framework, no ORM, no authentication, no validation) on the same uvicorn
settings as `serve`, with an asyncpg pool, answering `GET /` with the page
`?status=open&severity=critical&limit=50` asks for: the page of incidents, then their
services, encoded by orjson. No Python program can do this request's work for less, so its
rate says what share of the bare ASGI ceiling a list of 50 incidents can reach here at all.
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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The list page on any path; the lifespan opens and closes the pool."""
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
    body = await _page()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})
