"""The scenarios of the scale benchmark, each a wrk run against a real `serve`.

The server runs as in production: `reliability-studio serve` with its default settings, on
PostgreSQL, with token authentication (every request carries the owner's bearer token).
The SLO engine and evidence analysis are off: there are no SLOs and no Prometheus here, and
their work would be measured as noise in the request figures.
"""

from __future__ import annotations

import asyncio
import compileall
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tests.support.postgres import PostgresServer, free_port
from tests.support.served import COMMAND, ServedProcess, environment, serving_within

import reliability_studio
from bench.scale import growth
from bench.scale.wrk import Ids, Load, run_wrk
from reliability_studio.api.pagination import encode_cursor
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

ORG = str(DEFAULT_ORGANIZATION_ID)
LIST_PATH = "/api/incidents?status=open&severity=critical&limit=50"
DEEP_FILTER = "status=closed"
PAGE_SIZE = 50
# Latency comparisons (growth, pagination) at a load that does not queue: 8 connections.
LATENCY_CONNECTIONS = 8
SAMPLED_INCIDENT_IDS = 100_000
STARTUP_RUNS = 5
START_TIMEOUT = 120.0  # two workers starting on a busy machine


def server_settings(
    postgres: PostgresServer, database: str, workers: int, token: str
) -> dict[str, str]:
    """What `serve` is started with: the defaults, but for the database and the owner token."""
    return {
        "DATABASE_URL": postgres.url(database),
        "AUTH_MODE": "token",
        "BOOTSTRAP_TOKEN": token,
        "WEB_CONCURRENCY": str(workers),
        "SLO_ENGINE_ENABLED": "false",
        "ANALYSIS_ENABLED": "false",
    }


def run_all(
    postgres: PostgresServer,
    scratch: Path,
    load: Load,
    *,
    workers: int,
    token: str,
    deep_page: int = 1_000,
) -> dict[str, Any]:
    """Every scenario; the figures by name. `deep_page` is the page compared with page 1."""
    dsn = f"postgresql://postgres@127.0.0.1:{postgres.port}/scale"
    ids = asyncio.run(_write_ids(dsn, scratch))
    cursor, expected_first = asyncio.run(_deep_cursor(dsn, deep_page))
    latency_load = Load(LATENCY_CONNECTIONS, 2, load.seconds)
    figures: dict[str, Any] = {"deep_page": deep_page}
    settings = server_settings(postgres, "scale", workers, token)
    with serving_within(scratch, START_TIMEOUT, settings) as server:
        url = server.base_url
        _check_deep_page(url, token, cursor, expected_first, deep_page)
        run_wrk(url + LIST_PATH, None, Load(load.connections, 2, 2), token=token)  # warm-up
        figures["list"] = run_wrk(url + LIST_PATH, None, load, token=token)
        figures["get"] = run_wrk(url + "/", "get", load, token=token, ids=ids)
        figures["list_latency_1m"] = run_wrk(url + LIST_PATH, None, latency_load, token=token)
        page_one = f"{url}/api/incidents?{DEEP_FILTER}&limit={PAGE_SIZE}"
        figures["page_1"] = run_wrk(page_one, None, latency_load, token=token)
        figures["page_deep"] = run_wrk(
            f"{page_one}&cursor={cursor}", None, latency_load, token=token
        )
        figures["create"] = run_wrk(url + "/", "create", load, token=token, ids=ids)
        figures["timeline"] = run_wrk(url + "/", "timeline", load, token=token, ids=ids)
        figures["mixed"] = run_wrk(url + "/", "mixed", load, token=token, ids=ids)
        figures["mixed_latency"] = run_wrk(url + "/", "mixed", latency_load, token=token, ids=ids)
        figures["peak_rss_mb"] = worker_peak_rss_mb(server)
        small_settings = server_settings(postgres, "scale_small", workers, token)
        small_scratch = scratch / "small"  # a log of its own
        small_scratch.mkdir(exist_ok=True)
        with serving_within(small_scratch, START_TIMEOUT, small_settings) as small:
            small_list = small.base_url + LIST_PATH
            run_wrk(small_list, None, Load(load.connections, 2, 2), token=token)  # warm-up
            figures["growth"] = growth.alternate(url + LIST_PATH, small_list, latency_load, token)
    figures["startup_seconds"] = startup_seconds(scratch)
    return figures


async def _write_ids(dsn: str, scratch: Path) -> Ids:
    """Files of incident ids (a random sample of the whole history) and service ids."""
    connection = await asyncpg.connect(dsn)
    try:
        incidents = await connection.fetch(
            "SELECT id FROM incidents ORDER BY random() LIMIT $1", SAMPLED_INCIDENT_IDS
        )
        services = await connection.fetch("SELECT id FROM services")
    finally:
        await connection.close()
    ids = written_ids(scratch)
    ids.incidents.write_text("".join(f"{row['id']}\n" for row in incidents))
    ids.services.write_text("".join(f"{row['id']}\n" for row in services))
    return ids


def written_ids(scratch: Path) -> Ids:
    """Where `run_all` leaves its files of ids in `scratch` (for the floors to reuse)."""
    return Ids(incidents=scratch / "incident-ids.txt", services=scratch / "service-ids.txt")


async def _deep_cursor(dsn: str, page: int) -> tuple[str, str]:
    """The cursor that opens `page` of the `status=closed` list, and the page's first id.

    Made from the row that ends the page before, exactly as the API would have made it.
    """
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """SELECT created_at, id FROM incidents WHERE organization_id = $1
               AND status = 'closed' ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 2""",
            DEFAULT_ORGANIZATION_ID,
            (page - 1) * PAGE_SIZE - 1,
        )
    finally:
        await connection.close()
    if len(rows) < 2:
        raise RuntimeError(f"fewer than {page} pages of closed incidents: seed more")
    return encode_cursor(rows[0]["created_at"], rows[0]["id"]), str(rows[1]["id"])


def _check_deep_page(url: str, token: str, cursor: str, expected_first: str, page: int) -> None:
    """The deep page through the API starts where the SQL says it does."""
    response = httpx.get(
        f"{url}/api/incidents",
        params={"status": "closed", "limit": PAGE_SIZE, "cursor": cursor},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    first = response.json()["items"][0]["id"]
    if first != expected_first:
        raise RuntimeError(f"page {page} starts at {first}, not {expected_first}")


def worker_peak_rss_mb(server: ServedProcess) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each process of the server, in MB."""
    peaks: dict[str, float] = {}
    for pid in [server.process.pid, *_descendants(server.process.pid)]:
        status = Path(f"/proc/{pid}/status")
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmHWM:"):
                peaks[str(pid)] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def startup_seconds(scratch: Path) -> dict[str, Any]:
    """Seconds from starting `serve` on SQLite until `/health` answers 200.

    The first run starts on no database at all (it creates and migrates it); the others
    start on the database the first one left, as a restart does. The package is
    byte-compiled first, as pip does when it installs one: in a checkout, and under
    PYTHONDONTWRITEBYTECODE (set on this machine), every start would compile our 200
    modules again, about 0.4 s.
    """
    compileall.compile_dir(Path(reliability_studio.__file__).parent, quiet=1)
    runs: list[float] = []
    database = scratch / "startup" / "studio.db"
    database.parent.mkdir()
    for _ in range(STARTUP_RUNS):
        port = free_port()
        env = environment(DATABASE_URL=f"sqlite:///{database}", PORT=str(port), HOST="127.0.0.1")
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [str(COMMAND), "serve"],
            cwd=database.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > 30:
                    raise RuntimeError("serve did not become healthy within 30 s")
                time.sleep(0.01)
            runs.append(round(time.monotonic() - started, 3))
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {
        "first_start": runs[0],
        "restarts_median": statistics.median(runs[1:]),
        "runs": runs,
    }
