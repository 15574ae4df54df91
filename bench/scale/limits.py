"""This machine's limits, measured in the same run as the scenarios.

- `pgbench` on the same PostgreSQL: the built-in select-only script; `incident_create.sql`,
  the SQL of one `POST /api/incidents` statement for statement; `timeline_append.sql`, the
  same for `POST /api/incidents/{id}/timeline`;
- the bare ASGI endpoint of `bare.py` under the same uvicorn settings and worker count.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.postgres import PostgresServer, free_port

from bench.scale.wrk import Ids, Load, run_wrk

CREATE_SCRIPT = Path(__file__).parent / "incident_create.sql"
TIMELINE_SCRIPT = Path(__file__).parent / "timeline_append.sql"
TIMELINE_SAMPLE = 10_000  # incidents the timeline script appends to, drawn at random


def _pgbench(postgres: PostgresServer, database: str, *args: str) -> str:
    command = [
        str(postgres.bin / "pgbench"),
        *("-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres"),
        *args,
        database,
    ]
    result = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _figures(output: str) -> dict[str, float]:
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    if tps is None or latency is None:
        raise RuntimeError(f"unexpected pgbench output:\n{output}")
    return {"tps": round(float(tps.group(1)), 1), "latency_ms": float(latency.group(1))}


def pgbench_select_only(
    postgres: PostgresServer, clients: int, seconds: int, scale: int = 10
) -> dict[str, Any]:
    """pgbench -S (one primary-key SELECT per transaction) on its own database."""
    postgres.create_database("pgbench")
    _pgbench(postgres, "pgbench", "-i", "-q", "-s", str(scale))
    output = _pgbench(
        postgres, "pgbench", "-S", "-c", str(clients), "-j", "2", "-T", str(seconds), "-n"
    )
    return {"clients": clients, "seconds": seconds, "scale": scale, **_figures(output)}


def pgbench_incident_create(
    postgres: PostgresServer,
    database: str,
    *,
    clients: int,
    seconds: int,
    organization_id: str,
    services: int,
    token_hash: str,
) -> dict[str, Any]:
    """`incident_create.sql` against the seeded database: the SQL floor of a create."""
    output = _pgbench(
        postgres,
        database,
        *("-f", str(CREATE_SCRIPT), "-c", str(clients), "-j", "2", "-T", str(seconds), "-n"),
        *("-D", f"org={organization_id}", "-D", f"nservices={services}"),
        *("-D", f"token_hash={token_hash}"),
    )
    return {"clients": clients, "seconds": seconds, **_figures(output)}


def pgbench_timeline_append(
    postgres: PostgresServer,
    database: str,
    *,
    clients: int,
    seconds: int,
    organization_id: str,
    token_hash: str,
) -> dict[str, Any]:
    """`timeline_append.sql` against the seeded database: the SQL floor of a timeline note."""
    _pgbench_sql(
        postgres,
        database,
        "DROP TABLE IF EXISTS bench_incident_sample;"  # noqa: S608 - our constants only
        " CREATE TABLE bench_incident_sample AS SELECT row_number() OVER () AS n, id"
        f" FROM (SELECT id FROM incidents ORDER BY random() LIMIT {TIMELINE_SAMPLE}) AS s;"
        " CREATE UNIQUE INDEX ON bench_incident_sample (n); ANALYZE bench_incident_sample;",
    )
    sampled = int(_pgbench_sql(postgres, database, "SELECT count(*) FROM bench_incident_sample"))
    output = _pgbench(
        postgres,
        database,
        *("-f", str(TIMELINE_SCRIPT), "-c", str(clients), "-j", "2", "-T", str(seconds), "-n"),
        *("-D", f"org={organization_id}", "-D", f"nsample={sampled}"),
        *("-D", f"token_hash={token_hash}"),
    )
    return {"clients": clients, "seconds": seconds, **_figures(output)}


def _pgbench_sql(postgres: PostgresServer, database: str, sql: str) -> str:
    """Run `sql` with psql (the harness's set-up of a pgbench script); its bare output."""
    command = [
        str(postgres.bin / "psql"),
        *("-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", database),
        *("-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", sql),
    ]
    result = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, timeout=600, check=True
    )
    return result.stdout.strip()


def bare_asgi(
    workers: int,
    load: Load,
    app: str = "bench.scale.bare:app",
    scenario: str | None = None,
    ids: Ids | None = None,
) -> dict[str, Any]:
    """wrk against a bare ASGI `app`, served like `serve` serves ours (with a Lua
    `scenario` of `lua/`, or a GET of `/`)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [
            sys.executable,
            *("-m", "uvicorn", app, "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(workers), "--loop", "uvloop"),
            *("--http", "httptools", "--no-access-log", "--log-level", "warning"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/"
        run_wrk(url, scenario, Load(load.connections, load.threads, 2), ids=ids)
        return run_wrk(url, scenario, load, ids=ids)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def list_floor(
    postgres: PostgresServer, database: str, organization_id: str, workers: int, load: Load
) -> dict[str, Any]:
    """wrk against `floor.py`: the list scenario's SQL and JSON with nothing around them."""
    _floor_environment(postgres, database, organization_id)
    return bare_asgi(workers, load, app="bench.scale.floor:app")


def get_floor(
    postgres: PostgresServer,
    database: str,
    organization_id: str,
    workers: int,
    load: Load,
    ids: Ids,
) -> dict[str, Any]:
    """wrk's get scenario against `floor.py`: one incident's SQL and JSON, nothing else."""
    _floor_environment(postgres, database, organization_id)
    return bare_asgi(workers, load, app="bench.scale.floor:app", scenario="get", ids=ids)


def _floor_environment(postgres: PostgresServer, database: str, organization_id: str) -> None:
    os.environ["BENCH_FLOOR_DSN"] = f"postgresql://postgres@127.0.0.1:{postgres.port}/{database}"
    os.environ["BENCH_FLOOR_ORGANIZATION"] = organization_id
