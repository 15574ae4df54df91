"""The durable evaluation schedule: the background scheduler measures a new SLO by itself,
`claim_due` takes each due SLO once and moves it one interval on, and concurrent claims
(several workers) never take the same SLO, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.slos.models import SLO
from reliability_studio.slos.scheduler import SLOScheduler
from reliability_studio.telemetry.prometheus import PrometheusClient
from tests.slos.engine_helpers import (
    Dataset,
    app_state,
    dataset_prometheus,
    engine_settings,
    get_slo,
    in_app,
    new_slo,
    parse_time,
    prometheus_of,
    sessionmaker_of,
)
from tests.support.api import create_service, create_slo
from tests.support.postgres import free_port
from tests.support.slo_dataset import LATE_ABS_TOLERANCE_BUDGET, LATE_REL_TOLERANCE

SCHEDULER_TIMEOUT_SECONDS = 15.0


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def app_settings(settings: Settings, dataset: Dataset) -> Settings:
    """This backend and the dataset's Prometheus; the background scheduler stays off."""
    return engine_settings(settings, dataset.server.url)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    """An app for `app_settings`."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


def scheduler_for(client: TestClient, settings: Settings) -> SLOScheduler:
    """A scheduler on the app's database and Prometheus client, with `settings`."""
    return SLOScheduler(sessionmaker_of(client), prometheus_of(client), settings)


def next_evaluations(client: TestClient) -> dict[str, datetime | None]:
    """Every SLO's `next_evaluation_at`, by id."""

    async def read() -> dict[str, datetime | None]:
        async with sessionmaker_of(client)() as session:
            rows = await session.execute(select(SLO.id, SLO.next_evaluation_at))
            return {str(slo_id): moment for slo_id, moment in rows}

    return in_app(client, read)


def set_next_evaluation(client: TestClient, slo_ids: list[str], moment: datetime) -> None:
    """Make the SLOs due at `moment`."""

    async def write() -> None:
        async with sessionmaker_of(client)() as session:
            ids = [uuid.UUID(slo_id) for slo_id in slo_ids]
            await session.execute(
                update(SLO).where(SLO.id.in_(ids)).values(next_evaluation_at=moment)
            )
            await session.commit()

    in_app(client, write)


def claim(client: TestClient, scheduler: SLOScheduler, now: datetime) -> list[str]:
    """`scheduler.claim_due(now)`, as id strings."""
    return [str(slo_id) for slo_id in in_app(client, scheduler.claim_due, now)]


def sli_slos(client: TestClient, count: int) -> list[str]:
    """`count` SLOs with an SLI (due at once), on one service."""
    service_id = str(create_service(client)["id"])
    return [new_slo(client, "steady", service_id)["id"] for _ in range(count)]


# --- the background scheduler, end to end ---------------------------------------------------


def test_the_scheduler_measures_a_new_slo_by_itself(settings: Settings, dataset: Dataset) -> None:
    fast = engine_settings(
        settings,
        dataset.server.url,
        slo_engine_enabled=True,
        slo_evaluation_interval_seconds=1.0,
        slo_scheduler_tick_seconds=0.2,
    )
    with TestClient(create_app(fast)) as client:
        dataset.assert_fresh()
        service_id = str(create_service(client)["id"])
        manual = create_slo(client, service_id, name="manual", error_budget_remaining=70)
        slo = new_slo(client, "steady", service_id)
        created = datetime.now(UTC)

        body = _wait_until_evaluated(client, slo["id"])
        assert parse_time(body["evaluated_at"]) >= created - timedelta(seconds=1)
        assert body["status"] == "healthy"
        assert body["stale"] is False
        assert body["sli_value"] == pytest.approx(99.95, rel=LATE_REL_TOLERANCE)
        assert body["error_budget_remaining"] == pytest.approx(
            50, abs=100 * LATE_ABS_TOLERANCE_BUDGET
        )
        assert body["burn_rates"]["1h"] == pytest.approx(0.5, rel=LATE_REL_TOLERANCE)

        # It keeps measuring, once an interval.
        first = parse_time(body["evaluated_at"])
        deadline = time.monotonic() + SCHEDULER_TIMEOUT_SECONDS
        while parse_time(get_slo(client, slo["id"])["evaluated_at"]) == first:
            assert time.monotonic() < deadline, "the scheduler did not evaluate it again"
            time.sleep(0.1)

        # A manual SLO is never evaluated: its figures are the ones set by hand.
        untouched = get_slo(client, manual["id"])
        assert untouched["evaluated_at"] is None
        assert untouched["error_budget_remaining"] == 70
        assert untouched["status"] == "unknown"


def _wait_until_evaluated(client: TestClient, slo_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SCHEDULER_TIMEOUT_SECONDS
    while True:
        body = get_slo(client, slo_id)
        if body["evaluated_at"] is not None:
            return body
        assert time.monotonic() < deadline, "the scheduler did not evaluate the new SLO"
        time.sleep(0.1)


# --- claim semantics ------------------------------------------------------------------------


def test_claim_due_takes_due_slos_once_and_moves_them_one_interval_on(
    client: TestClient, app_settings: Settings
) -> None:
    ids = sli_slos(client, 3)
    manual = create_slo(client, str(create_service(client)["id"]))
    scheduler = scheduler_for(client, app_settings)
    interval = timedelta(seconds=app_settings.slo_evaluation_interval_seconds)
    now = datetime.now(UTC) + timedelta(seconds=1)

    assert sorted(claim(client, scheduler, now)) == sorted(ids)
    schedule = next_evaluations(client)
    assert all(schedule[slo_id] == now + interval for slo_id in ids)
    assert schedule[manual["id"]] is None
    assert claim(client, scheduler, now) == []
    assert claim(client, scheduler, now + interval - timedelta(seconds=1)) == []
    assert sorted(claim(client, scheduler, now + interval)) == sorted(ids)


def test_claim_due_takes_at_most_a_batch_the_most_overdue_first(
    client: TestClient, app_settings: Settings
) -> None:
    ids = sli_slos(client, 5)
    now = datetime.now(UTC) + timedelta(seconds=1)
    for age, slo_id in enumerate(ids):  # the last is the most overdue
        set_next_evaluation(client, [slo_id], now - timedelta(minutes=age))
    scheduler = scheduler_for(client, app_settings.model_copy(update={"slo_batch_size": 2}))
    assert claim(client, scheduler, now) == [ids[4], ids[3]]
    assert claim(client, scheduler, now) == [ids[2], ids[1]]
    assert claim(client, scheduler, now) == [ids[0]]
    assert claim(client, scheduler, now) == []


def test_changing_the_definition_makes_an_slo_due_again(
    client: TestClient, app_settings: Settings
) -> None:
    [slo_id] = sli_slos(client, 1)
    scheduler = scheduler_for(client, app_settings)
    claimed_at = datetime.now(UTC) + timedelta(seconds=1)
    assert claim(client, scheduler, claimed_at) == [slo_id]
    response = client.patch(f"/api/slos/{slo_id}", json={"description": "not a definition"})
    assert response.status_code == 200
    assert claim(client, scheduler, claimed_at + timedelta(seconds=1)) == []
    response = client.patch(f"/api/slos/{slo_id}", json={"objective": 99.5})
    assert response.status_code == 200
    assert claim(client, scheduler, datetime.now(UTC) + timedelta(seconds=1)) == [slo_id]


def test_an_slo_made_manual_leaves_the_schedule(client: TestClient, app_settings: Settings) -> None:
    [slo_id] = sli_slos(client, 1)
    response = client.patch(f"/api/slos/{slo_id}", json={"sli": None})
    assert response.status_code == 200
    assert next_evaluations(client)[slo_id] is None
    scheduler = scheduler_for(client, app_settings)
    assert claim(client, scheduler, datetime.now(UTC) + timedelta(days=1)) == []


HOLD_SECONDS = 1.0


def test_concurrent_claims_never_take_the_same_slo(
    client: TestClient, app_settings: Settings
) -> None:
    """Three workers claim at once while each claim holds its rows for a moment."""
    ids = sli_slos(client, 12)
    settings = app_settings.model_copy(update={"slo_batch_size": 4})
    workers = [scheduler_for(client, settings) for _ in range(3)]
    now = datetime.now(UTC) + timedelta(seconds=1)
    engine: AsyncEngine = app_state(client).engine

    def hold_the_claim(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "next_evaluation_at <=" in statement:
            await_only(asyncio.sleep(HOLD_SECONDS))  # rows selected (and locked), not updated

    async def claim_all() -> list[list[uuid.UUID]]:
        return list(await asyncio.gather(*(worker.claim_due(now) for worker in workers)))

    event.listen(engine.sync_engine, "after_cursor_execute", hold_the_claim)
    try:
        started = time.monotonic()
        claims = in_app(client, claim_all)
        elapsed = time.monotonic() - started
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", hold_the_claim)

    claimed = [str(slo_id) for batch in claims for slo_id in batch]
    assert len(claimed) == len(set(claimed)), f"an SLO was claimed twice: {claims}"
    assert sorted(claimed) == sorted(ids)
    assert [len(batch) for batch in claims] == [4, 4, 4]
    if engine.dialect.name == "postgresql":
        # SKIP LOCKED: the workers did not wait for each other (one after another would take
        # three holds; the margin absorbs a busy machine's overhead).
        assert elapsed < 2 * HOLD_SECONDS, f"the claims ran one after another ({elapsed:.2f} s)"


def test_a_tick_evaluates_what_it_claims_at_its_own_time(
    client: TestClient, app_settings: Settings, dataset: Dataset
) -> None:
    due, later = sli_slos(client, 2)
    set_next_evaluation(client, [due], dataset.at - timedelta(seconds=1))
    set_next_evaluation(client, [later], dataset.at + timedelta(hours=1))
    scheduler = scheduler_for(client, app_settings)

    assert in_app(client, scheduler.tick, dataset.at) == 1
    body = get_slo(client, due)
    assert parse_time(body["evaluated_at"]) == dataset.at
    assert body["error_budget_remaining"] == pytest.approx(50, abs=1e-6)  # exact: at `now`
    assert get_slo(client, later)["evaluated_at"] is None
    interval = timedelta(seconds=app_settings.slo_evaluation_interval_seconds)
    assert next_evaluations(client)[due] == dataset.at + interval


def test_a_tick_while_prometheus_is_down_marks_the_claimed_slos_stale(
    client: TestClient, app_settings: Settings
) -> None:
    [slo_id] = sli_slos(client, 1)
    down = PrometheusClient(f"http://127.0.0.1:{free_port()}", attempts=1)
    try:
        scheduler = SLOScheduler(sessionmaker_of(client), down, app_settings)
        assert in_app(client, scheduler.tick, datetime.now(UTC) + timedelta(seconds=1)) == 1
    finally:
        in_app(client, down.close)
    body = get_slo(client, slo_id)
    assert body["status"] == "unknown"
    assert body["stale"] is True
    assert "Prometheus unreachable" in body["evaluation_error"]
