"""Concurrent responders: one version, one winner; appends and unconditional writes kept.

The API is served by a real uvicorn on a socket (`served_in_thread`) and driven by threads
released together by a barrier, so the requests really overlap: on PostgreSQL each holds
its own connection, on SQLite each its own connection waiting for the write lock.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from reliability_studio.app import create_app
from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.support.api import assert_problem, create_service, create_slo
from tests.support.threaded_server import served_in_thread

CONCURRENT_PATCHES = 50
T = TypeVar("T")


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    """An HTTP client of the app served on a real socket, with room for every thread."""
    limits = httpx.Limits(max_connections=CONCURRENT_PATCHES + 10)
    with (
        served_in_thread(create_app(settings)) as base_url,
        httpx.Client(base_url=base_url, timeout=30, limits=limits) as client,
    ):
        yield client


def _all_at_once(count: int, request: Callable[[int], T]) -> list[T]:
    """Run `request(i)` for i in 0..count-1 in as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait(timeout=10)
        return request(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_fifty_concurrent_patches_with_the_same_if_match_make_exactly_one_change(
    api: httpx.Client,
) -> None:
    incident = _created(api.post("/api/incidents", json={"title": "t", "severity": "critical"}))
    path = f"/api/incidents/{incident['id']}"

    responses = _all_at_once(
        CONCURRENT_PATCHES,
        lambda i: api.patch(
            path,
            json={"title": f"edit {i}", "severity": "high"},
            headers={"If-Match": '"1"', "X-Actor": f"responder-{i}"},
        ),
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: CONCURRENT_PATCHES - 1}, statuses
    [winner] = [response for response in responses if response.status_code == 200]
    assert winner.headers["etag"] == '"2"'
    for refused in (response for response in responses if response.status_code == 412):
        assert refused.json()["current_version"] == 2
    current = api.get(path)
    assert current.json()["title"] == winner.json()["title"]
    assert current.json()["version"] == 2
    # The losers wrote nothing at all: one severity change on the timeline, not fifty.
    timeline = api.get(f"{path}/timeline", params={"type": "severity_change"}).json()["items"]
    assert len(timeline) == 1, timeline


def test_concurrent_task_edits_with_if_match_never_overwrite_each_other_unseen(
    api: httpx.Client,
) -> None:
    incident = _created(api.post("/api/incidents", json={"title": "t"}))
    task = _created(api.post(f"/api/incidents/{incident['id']}/tasks", json={"title": "Fix"}))
    path = f"/api/incidents/{incident['id']}/tasks/{task['id']}"
    # Two responders read version 1; each changes a different field, at the same moment.
    edits = [{"assignee": "alice"}, {"status": "done"}]

    first = _all_at_once(2, lambda i: api.patch(path, json=edits[i], headers={"If-Match": '"1"'}))

    assert sorted(response.status_code for response in first) == [200, 412]
    loser = next(i for i, response in enumerate(first) if response.status_code == 412)
    # The loser reads the task again and reapplies their change on the new version.
    fresh = api.get(path)
    retried = api.patch(path, json=edits[loser], headers={"If-Match": fresh.headers["etag"]})
    assert retried.status_code == 200, retried.text
    final = api.get(path).json()
    assert (final["assignee"], final["status"], final["version"]) == ("alice", "done", 3)


def test_concurrent_timeline_appends_from_two_responders_are_all_kept(
    api: httpx.Client,
) -> None:
    incident = _created(api.post("/api/incidents", json={"title": "t"}))
    path = f"/api/incidents/{incident['id']}"
    per_responder = 15

    def work(i: int) -> list[int]:
        if i == 2:  # meanwhile a third responder works the incident itself
            return [
                api.patch(path, json={"status": status}).status_code
                for status in ("investigating", "identified", "monitoring")
            ]
        return [
            api.post(
                f"{path}/timeline",
                json={"type": "note", "title": f"note {n}"},
                headers={"X-Actor": f"responder-{i}"},
            ).status_code
            for n in range(per_responder)
        ]

    results = _all_at_once(3, work)

    assert results[0] == results[1] == [201] * per_responder
    assert results[2] == [200, 200, 200]
    notes = api.get(f"{path}/timeline", params={"type": "note", "limit": 100}).json()["items"]
    by_actor = Counter(note["actor"] for note in notes)
    assert by_actor == {"responder-0": per_responder, "responder-1": per_responder}
    changes = api.get(f"{path}/timeline", params={"type": "status_change"}).json()["items"]
    assert len(changes) == 3


def test_the_database_refuses_a_write_based_on_a_stale_read(settings: Settings) -> None:
    """The version check is in the UPDATE itself (`WHERE version = :loaded`), not only in
    the API's lock: a writer that skips the lock still cannot overwrite unseen."""

    async def scenario() -> None:
        engine = create_engine(settings)
        sessions = create_sessionmaker(engine)
        try:
            service_id = uuid.uuid4()
            async with sessions() as setup:
                setup.add(Service(id=service_id, organization_id=DEFAULT_ORGANIZATION_ID, name="v"))
                await setup.commit()
            async with sessions() as slow, sessions() as fast:
                stale = await slow.scalar(select(Service).where(Service.id == service_id))
                assert stale is not None
                assert stale.version == 1
                await slow.commit()  # keep the object, end the read (SQLite: one writer)

                current = await fast.scalar(select(Service).where(Service.id == service_id))
                assert current is not None
                current.team = "fast"
                await fast.commit()
                assert current.version == 2

                stale.team = "slow"
                with pytest.raises(StaleDataError):
                    await slow.commit()
            async with sessions() as check:
                kept = await check.scalar(select(Service).where(Service.id == service_id))
                assert kept is not None
                assert (kept.team, kept.version) == ("fast", 2)
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_a_background_writer_moves_the_version(client: TestClient) -> None:
    """The SLO engine marks an SLO stale when Prometheus is down (none answers in these
    tests): an ORM write like any other, so its version moves and an old ETag is stale."""
    service = create_service(client)
    slo = create_slo(client, service["id"], sli={"kind": "bool_gauge", "metric": "up"})
    path = f"/api/slos/{slo['id']}"
    assert client.get(path).headers["etag"] == '"1"'

    evaluated = client.post(f"{path}/evaluate")
    assert evaluated.status_code == 200, evaluated.text
    assert evaluated.json()["stale"] is True

    assert client.get(path).headers["etag"] == '"2"'
    assert_problem(client.patch(path, json={"name": "x"}, headers={"If-Match": '"1"'}), 412)
