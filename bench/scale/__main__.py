"""Benchmark at scale: the API over a year's worth of history, against this machine's limits.

    python -m bench.scale [--quick | --tiny] [--seconds 15] [--workers N]

It starts a throwaway PostgreSQL with durable settings, seeds it (`seed.py`: by default
1,000 services, 1 M incidents over two years, 10 M timeline events, 500 k tasks; `--quick`
a tenth; `--tiny` a few thousand rows, for the harness's own smoke test), measures this
machine's limits in the same run (`limits.py`: pgbench select-only, pgbench running the SQL
of an incident create, a bare ASGI endpoint under the same server settings), then drives a
real `reliability-studio serve` with `wrk` from a separate process through the scenarios of
`scenarios.py`. It writes `bench/results/<date>-scale[-quick].json` and `.md`, and prints
the Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from tests.support.postgres import PostgresServer

from bench.alert_ingest import postgres_settings
from bench.machine import machine
from bench.report import write_result
from bench.scale import limits, scenarios
from bench.scale.seed import FULL, QUICK, SMALL, TINY, TINY_SMALL, Size, seed
from bench.scale.table import markdown_table
from bench.scale.wrk import Load
from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head

# Memory for a database of a few GB on a machine of 24 GB shared with the load generator.
POSTGRES_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
}
TOKEN = "rs_" + "scale-benchmark-owner-token-0000000000000000"[:43]


class ServerSQL(TypedDict):
    """How the pgbench scripts of the server's SQL run."""

    clients: int
    seconds: int
    organization_id: str


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a tenth of the data")
    size.add_argument("--tiny", action="store_true", help="a few thousand rows (smoke test)")
    parser.add_argument("--seconds", type=int, default=None, help="per scenario")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--results", type=Path, default=None, help="write here instead")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    size, small, name = _sizes(args)
    seconds = args.seconds or (2 if args.tiny else 10 if args.quick else 15)
    load = Load(connections=args.connections, threads=2, seconds=seconds)
    result = run(size, small, load, workers=args.workers)
    result["name"] = name
    path = write_result(result, name) if args.results is None else _write_to(args.results, result)
    table = markdown_table(result)
    path.with_suffix(".md").write_text(table + "\n")
    print("\n" + table + f"\n\nresult: {path}")


def _sizes(args: argparse.Namespace) -> tuple[Size, Size, str]:
    if args.tiny:
        return TINY, TINY_SMALL, "scale-tiny"
    if args.quick:
        return QUICK, SMALL, "scale-quick"
    return FULL, SMALL, "scale"


def _write_to(path: Path, result: dict[str, Any]) -> Path:
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def run(size: Size, small: Size, load: Load, *, workers: int) -> dict[str, Any]:
    """Seed, measure the limits, run the scenarios; every figure in one dictionary."""
    postgres = PostgresServer(durable=True, settings=POSTGRES_SETTINGS)
    postgres.start()
    try:
        started = time.monotonic()
        for database, amount in (("scale", size), ("scale_small", small)):
            postgres.create_database(database)
            upgrade_to_head(Settings(database_url=postgres.url(database)))
            dsn = f"postgresql://postgres@127.0.0.1:{postgres.port}/{database}"
            asyncio.run(seed(dsn, amount, label=f"{database}: "))
        seeded_seconds = round(time.monotonic() - started, 1)
        token_hash = hashlib.sha256(TOKEN.encode()).hexdigest()
        with tempfile.TemporaryDirectory(prefix="rs-scale-") as scratch:
            figures = scenarios.run_all(
                postgres,
                Path(scratch),
                load,
                workers=workers,
                token=TOKEN,
                deep_page=10 if size == TINY else 1_000,
            )
            limit_load = Load(load.connections, load.threads, load.seconds)
            seconds = int(max(load.seconds, 2))
            # The scripts of the server's own SQL: one organization, the benchmark's token.
            as_server = ServerSQL(clients=16, seconds=seconds, organization_id=scenarios.ORG)
            floor = {
                "pgbench_select_only": limits.pgbench_select_only(
                    postgres, clients=16, seconds=seconds
                ),
                "pgbench_incident_create": limits.pgbench_incident_create(
                    postgres, "scale", services=size.services, token_hash=token_hash, **as_server
                ),
                "pgbench_timeline_append": limits.pgbench_timeline_append(
                    postgres, "scale", token_hash=token_hash, **as_server
                ),
                "bare_asgi": limits.bare_asgi(workers, limit_load),
                "list_floor": limits.list_floor(
                    postgres, "scale", scenarios.ORG, workers, limit_load
                ),
                "get_floor": limits.get_floor(
                    postgres,
                    "scale",
                    scenarios.ORG,
                    workers,
                    limit_load,
                    scenarios.written_ids(Path(scratch)),
                ),
            }
        return {
            "machine": machine(),
            "postgres": postgres_settings(postgres, "scale"),
            "data": {
                "incidents": size.incidents,
                "services": size.services,
                "timeline_events": size.events,
                "tasks": size.tasks,
                "small_incidents": small.incidents,
                "seed_seconds": seeded_seconds,
            },
            "server": {"workers": workers, "auth": "token"},
            "load": {"connections": load.connections, "seconds": load.seconds},
            "limits": floor,
            "scenarios": figures,
        }
    finally:
        postgres.stop(mode="immediate")
        postgres.remove()


if __name__ == "__main__":
    main()
