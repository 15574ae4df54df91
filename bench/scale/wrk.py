"""Run `wrk` with one of our Lua scenarios and read its JSON summary.

Each scenario in `lua/` is appended to `lua/report.lua` (the token, the id files and the
`done` hook that prints a `WRK_RESULT {...}` line). wrk runs in its own process: the load
generator never shares the server's interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA = Path(__file__).parent / "lua"
MARKER = "WRK_RESULT "


@dataclass(frozen=True)
class Load:
    """How hard to push: connections, wrk threads and seconds."""

    connections: int = 64
    threads: int = 2
    seconds: int = 15


@dataclass(frozen=True)
class Ids:
    """Files of ids, one per line, for the scenarios that pick at random."""

    incidents: Path
    services: Path


def wrk_binary() -> str:
    """The path of wrk; a clear error when it is missing (`make bench` installs it)."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run ./scripts/install-test-deps.sh")
    return found


def run_wrk(
    url: str,
    scenario: str | None,
    load: Load,
    *,
    token: str | None = None,
    ids: Ids | None = None,
) -> dict[str, Any]:
    """Load `url` for `load.seconds`; wrk's figures with requests per second added.

    `scenario` names a file in `lua/` that makes the requests (None: GET `url` itself).
    """
    script = (LUA / "report.lua").read_text()
    if scenario is not None:
        script += "\n" + (LUA / f"{scenario}.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    if ids is not None:
        env["BENCH_INCIDENT_IDS"] = str(ids.incidents)
        env["BENCH_SERVICE_IDS"] = str(ids.services)
    command = [
        wrk_binary(),
        *("-c", str(load.connections), "-t", str(load.threads)),
        *("-d", f"{load.seconds}s", "--timeout", "10s", "-s", handle.name, url),
    ]
    try:
        result = subprocess.run(  # noqa: S603 - our own command line
            command, capture_output=True, text=True, env=env, timeout=load.seconds + 60
        )
    finally:
        Path(handle.name).unlink()
    line = next((x for x in result.stdout.splitlines() if x.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{result.stdout}\n{result.stderr}")
    figures: dict[str, Any] = json.loads(line[len(MARKER) :])
    seconds = figures["duration_us"] / 1e6
    errors = figures["errors"]
    figures["non_2xx_or_failed"] = sum(errors.values())
    figures["requests_per_second"] = round(figures["requests"] / seconds, 1)
    figures["ok_per_second"] = round(
        (figures["requests"] - figures["non_2xx_or_failed"]) / seconds, 1
    )
    figures["latency_ms"] = {k: round(v / 1000, 2) for k, v in figures.pop("latency_us").items()}
    figures["load"] = {"connections": load.connections, "threads": load.threads}
    return figures
