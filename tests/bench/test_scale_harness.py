"""Smoke test of the scale benchmark's harness (`bench/scale`), on tiny data, in seconds.

The benchmark itself never runs in `make test`; this checks that its parts still work:
the seeding SQL against the current schema, the deep-page cursor, wrk with our Lua
scripts, and the table. wrk is installed by the test set-up; without it this test fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from bench.scale import growth, limits
from bench.scale.scenarios import ORG, _deep_cursor, _write_ids
from bench.scale.seed import Size, seed
from bench.scale.wrk import Load, run_wrk

from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from tests.support.postgres import PostgresServer
from tests.support.served import ServedProcess, serving

SIZE = Size(services=10, incidents=1_500, events_per_incident=3, tasks=500)


@pytest.fixture(scope="module")
def seeded(postgres_server: PostgresServer) -> str:
    """A database of the session's PostgreSQL seeded with SIZE; its URL."""
    name = f"scale_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    upgrade_to_head(Settings(database_url=postgres_server.url(name)))
    asyncio.run(seed(_dsn(postgres_server, name), SIZE))
    return name


@pytest.fixture(scope="module")
def server(
    postgres_server: PostgresServer, seeded: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedProcess]:
    """`serve` on the seeded database."""
    with serving(
        tmp_path_factory.mktemp("scale"), DATABASE_URL=postgres_server.url(seeded)
    ) as served:
        yield served


def _dsn(postgres_server: PostgresServer, name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"


async def _count(dsn: str, table: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()


def test_seeding_makes_the_rows_the_size_asks_for(
    postgres_server: PostgresServer, seeded: str
) -> None:
    dsn = _dsn(postgres_server, seeded)
    assert asyncio.run(_count(dsn, "services")) == SIZE.services
    assert asyncio.run(_count(dsn, "incidents")) == SIZE.incidents
    assert asyncio.run(_count(dsn, "timeline_events")) == SIZE.events
    # One to three distinct services per incident.
    links = asyncio.run(_count(dsn, "incident_services"))
    assert SIZE.incidents <= links <= 3 * SIZE.incidents


def test_only_the_newest_incidents_are_still_active(
    postgres_server: PostgresServer, seeded: str
) -> None:
    async def active() -> int:
        connection = await asyncpg.connect(_dsn(postgres_server, seeded))
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM incidents WHERE status NOT IN ('resolved', 'closed')"
                )
            )
        finally:
            await connection.close()

    assert asyncio.run(active()) == 1_200  # seed.ACTIVE_INCIDENTS, whatever the size


def test_the_deep_page_cursor_opens_the_page_the_api_serves(
    postgres_server: PostgresServer, seeded: str, server: ServedProcess
) -> None:
    cursor, first = asyncio.run(_deep_cursor(_dsn(postgres_server, seeded), 3))
    page = httpx.get(
        f"{server.base_url}/api/incidents",
        params={"status": "closed", "limit": 50, "cursor": cursor},
    ).json()
    assert page["items"][0]["id"] == first


def test_wrk_runs_a_lua_scenario_and_reports_its_figures(
    postgres_server: PostgresServer, seeded: str, server: ServedProcess, tmp_path: Path
) -> None:
    ids = asyncio.run(_write_ids(_dsn(postgres_server, seeded), tmp_path))
    figures = run_wrk(server.base_url + "/", "get", Load(4, 1, 1), ids=ids)
    assert figures["requests"] > 0
    assert figures["non_2xx_or_failed"] == 0
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]


@pytest.mark.parametrize("script", ["create", "timeline"])
def test_the_pgbench_floor_scripts_run_against_the_current_schema(
    postgres_server: PostgresServer, seeded: str, script: str
) -> None:
    # The scripts copy the server's SQL by hand: a schema change that breaks them fails here.
    token_hash = hashlib.sha256(b"no-such-token").hexdigest()
    if script == "create":
        figures = limits.pgbench_incident_create(
            postgres_server,
            seeded,
            clients=2,
            seconds=1,
            organization_id=ORG,
            services=SIZE.services,
            token_hash=token_hash,
        )
    else:
        figures = limits.pgbench_timeline_append(
            postgres_server,
            seeded,
            clients=2,
            seconds=1,
            organization_id=ORG,
            token_hash=token_hash,
        )
    assert figures["tps"] > 0


def test_the_get_floor_answers_the_get_scenario_with_incidents(
    postgres_server: PostgresServer, seeded: str, tmp_path: Path
) -> None:
    ids = asyncio.run(_write_ids(_dsn(postgres_server, seeded), tmp_path))
    figures = limits.get_floor(postgres_server, seeded, ORG, 1, Load(2, 1, 1), ids)
    assert figures["requests"] > 0
    assert figures["non_2xx_or_failed"] == 0


def test_growth_alternates_the_two_servers_in_rounds_and_reports_medians(
    server: ServedProcess,
) -> None:
    # The same server twice (a different page size each), 3 rounds of 1 s: the harness's
    # alternation and its figures, not the data's size, are what this checks.
    big = server.base_url + "/api/incidents?limit=50"
    small = server.base_url + "/api/incidents?limit=5"
    figures = growth.alternate(big, small, Load(4, 1, 3), token=None)
    assert len(figures["rounds"]) == growth.ROUNDS
    assert all(r["big_p50"] > 0 and r["small_p50"] > 0 for r in figures["rounds"])
    ratios = sorted(r["big_p50"] / r["small_p50"] for r in figures["rounds"])
    assert figures["ratio"] == ratios[1]


def test_growth_takes_the_median_of_the_rounds_ratios_not_the_ratio_of_medians() -> None:
    rounds = [
        {"big_p50": 20.0, "small_p50": 10.0},  # a slow moment for both: ratio 2
        {"big_p50": 11.0, "small_p50": 10.0},
        {"big_p50": 12.0, "small_p50": 12.0},
    ]
    figures = growth.summarize(rounds)
    assert (figures["big_p50"], figures["small_p50"]) == (12.0, 10.0)
    assert figures["ratio"] == 1.1
