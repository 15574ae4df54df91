"""What the reliability tests share: a durable PostgreSQL server of their own, and
`reliability-studio serve` processes that can be killed and started again on one port.

A missing PostgreSQL fails these tests (`find_postgres_bin`), in CI and everywhere: they
never skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresServer
from tests.support.served import COMMAND, ServedProcess, environment

# Generous: the machine's cores are shared, and a start under load can take many seconds.
START_TIMEOUT_SECONDS = 60.0
# Nothing answers on port 1: the SLO engine and evidence gathering must not reach out.
QUIET_JOBS = {
    "SLO_ENGINE_ENABLED": "false",
    "ALERT_CORRELATION_ENABLED": "false",
    "ANALYSIS_ENABLED": "false",
    "NOTIFY_ENABLED": "false",
    "PROMETHEUS_URL": "http://127.0.0.1:1",
}


@pytest.fixture
def durable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own (stopping it disturbs no other test), with
    fsync and synchronous commits on, as in production: a commit it acknowledged is on disk."""
    server = PostgresServer(durable=True)
    server.start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")
        server.remove()


def start_serve(cwd: Path, port: int, log_name: str, **settings: str) -> ServedProcess:
    """`reliability-studio serve` on `port` with `settings`, healthy (its output in
    `cwd/log_name`). Unlike `served.serving`, the port is the caller's, so that a process
    started after a kill -9 answers where the clients already send their requests."""
    log = cwd / log_name
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(COMMAND), "serve"],
            cwd=cwd,
            env=environment(**{"PORT": str(port), "HOST": "127.0.0.1", **settings}),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = ServedProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        served.wait_until_healthy(timeout=START_TIMEOUT_SECONDS)
    except BaseException:
        served.kill()
        raise
    return served


def create_services(base_url: str, count: int) -> list[str]:
    """`count` services created through the API; their ids."""
    ids = []
    with httpx.Client(base_url=base_url, timeout=10) as api:
        for n in range(count):
            response = api.post("/api/services", json={"name": f"service-{n}", "team": "sre"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids
