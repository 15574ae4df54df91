"""Specification of the `reliability-studio` command, run as users run it: a real process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reliability_studio import __version__
from tests.support.postgres import PostgresServer, free_port

COMMAND = Path(sys.executable).parent / "reliability-studio"
START_TIMEOUT_SECONDS = 15.0
SEED_TABLES = {
    "services",
    "slos",
    "incidents",
    "incident_services",
    "timeline_events",
    "incident_tasks",
    "organizations",
}


def _environment(**settings: str) -> dict[str, str]:
    """The current environment without our settings, plus `settings`."""
    ours = {
        "DATABASE_URL",
        "PORT",
        "HOST",
        "CORS_ORIGINS",
        "LOG_LEVEL",
        "WEB_CONCURRENCY",
        "MAX_BODY_BYTES",
        "AUTH_MODE",
    }
    env = {name: value for name, value in os.environ.items() if name.upper() not in ours}
    # tests/identity test the identities; one worker, where `serve` would start one per CPU.
    return {**env, "AUTH_MODE": "none", "WEB_CONCURRENCY": "1", **settings}


def _run(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args],
        cwd=cwd,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def _json_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def _serving(cwd: Path, database_url: str) -> Iterator[Server]:
    """`reliability-studio serve` on a free port, stopped (and reaped) on exit."""
    port = free_port()
    log = cwd / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(COMMAND), "serve"],
            cwd=cwd,
            env=_environment(DATABASE_URL=database_url, PORT=str(port), HOST="127.0.0.1"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_for_health(server: Server) -> tuple[httpx.Response, float]:
    """The first answer of /health, and how long it took to come."""
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_SECONDS:
        assert server.process.poll() is None, f"serve exited early:\n{server.output()}"
        try:
            return httpx.get(f"{server.base_url}/health", timeout=2), time.monotonic() - started
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(
        f"serve did not answer within {START_TIMEOUT_SECONDS}s:\n{server.output()}"
    )


def _stop_gracefully(server: Server) -> None:
    """SIGTERM ends the process after a graceful shutdown.

    uvicorn re-raises the signal once it has shut down, so that supervisors see the process
    end by SIGTERM; exit status 0 is as good.
    """
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in server.output()


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = _run("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"reliability-studio {__version__}"


def test_the_module_runs_as_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reliability_studio", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"reliability-studio {__version__}"


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    assert "migrate" in result.stdout


def test_migrate_creates_the_tables_of_a_new_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "x.db"
    result = _run("migrate", cwd=tmp_path, DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert _tables(database) >= SEED_TABLES


def test_migrate_twice_succeeds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert _run("migrate", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    second = _run("migrate", cwd=tmp_path, DATABASE_URL=url)
    assert second.returncode == 0, second.stderr


def test_migrate_logs_json_with_the_password_hidden(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    postgres_server.create_database("cli_migrate")
    url = postgres_server.url("cli_migrate").replace("postgres@", "postgres:s3cret-pw@")
    result = _run("migrate", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    [done] = [r for r in _json_lines(result.stdout) if r["message"] == "database migrated"]
    assert done["level"] == "INFO"
    assert "***" in done["database"]
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_an_invalid_configuration_exits_2_naming_the_variables(tmp_path: Path) -> None:
    result = _run(
        "migrate",
        cwd=tmp_path,
        DATABASE_URL="postgres://u:hunter2@h/db?sslmode=maybe",
        PORT="abc",
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "sslmode" in result.stderr
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_an_unreachable_database_makes_migrate_exit_1_with_a_message(tmp_path: Path) -> None:
    url = f"postgres://u:hunter2@127.0.0.1:{free_port()}/db?sslmode=disable"
    result = _run("migrate", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 1
    assert "cannot migrate" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_serve_migrates_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "y.db"
    with _serving(tmp_path, f"sqlite:///{database}") as server:
        health, seconds = _wait_for_health(server)
        assert health.status_code == 200, health.text
        assert health.json()["checks"]["database"] == {"status": "ok", "backend": "sqlite"}
        assert seconds < 10
        assert _tables(database) >= SEED_TABLES

        _stop_gracefully(server)


def test_serve_answers_the_api_and_writes_json_access_logs(tmp_path: Path) -> None:
    with _serving(tmp_path, f"sqlite:///{tmp_path / 'y.db'}") as server:
        _wait_for_health(server)
        created = httpx.post(
            f"{server.base_url}/api/services",
            json={"name": "payment-service"},
            headers={"X-Request-ID": "cli-1"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"].startswith("/api/services/")
        assert "server" not in created.headers
        _stop_gracefully(server)
    records = _json_lines(server.output())
    access = [r for r in records if r["logger"] == "reliability_studio.access"]
    [post] = [r for r in access if r["request_id"] == "cli-1"]
    assert post["method"] == "POST"
    assert post["route"] == "/api/services"
    assert post["status"] == 201
    assert {"time", "level", "duration_ms"} <= set(post)
    assert not [r for r in records if r["logger"] == "uvicorn.access"]


def test_serve_on_postgresql_answers_health(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    postgres_server.create_database("cli_serve")
    with _serving(tmp_path, postgres_server.url("cli_serve")) as server:
        health, _ = _wait_for_health(server)
        assert health.status_code == 200, health.text
        assert health.json()["checks"]["database"] == {"status": "ok", "backend": "postgresql"}
        listed = httpx.get(f"{server.base_url}/api/incidents")
        assert listed.json() == {"items": [], "next_cursor": None}
        _stop_gracefully(server)


def test_serve_refuses_to_start_on_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgres://u@127.0.0.1:{free_port()}/db?sslmode=disable"
    with _serving(tmp_path, url) as server:
        assert server.process.wait(timeout=30) == 1
    assert "cannot migrate" in server.output()


@pytest.mark.parametrize("args", [["serve", "--port", "abc"], ["no-such-command"]])
def test_bad_arguments_exit_2_with_usage(tmp_path: Path, args: list[str]) -> None:
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Usage" in result.stderr


def _python_output(script: str, *, cwd: Path) -> str:
    """What `python -c script` prints, in a process of its own (a fresh interpreter)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_serve_starts_without_the_libraries_only_some_requests_need(tmp_path: Path) -> None:
    # numpy (JSON depth checks, anomaly detection) and joserfc (single sign-on) cost ~200 ms
    # of start-up; they are imported at their first use instead.
    script = (
        "import sys, reliability_studio.cli, reliability_studio.app as app;"
        "from reliability_studio.config import Settings;"
        "app.create_app(Settings(database_url='sqlite:///unused.db'));"
        "print(sorted({'numpy', 'joserfc'} & set(sys.modules)))"
    )
    output = _python_output(script, cwd=tmp_path)
    assert output.strip() == "[]", output


def test_the_command_imports_its_modules_without_full_garbage_collections(
    tmp_path: Path,
) -> None:
    # Full collections while ~200 modules load walk every object they made, again and
    # again, to free nothing: about 0.3 s of a start. The entry point pauses collection
    # for the imports, then freezes what they made.
    script = (
        "import gc, json, sys;"
        "full = [];"
        "gc.callbacks.append(lambda phase, info: phase == 'start'"
        " and info['generation'] == 2 and full.append(1));"
        "sys.argv = ['reliability-studio', '--help'];"
        "from reliability_studio.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps({'full': len(full), 'frozen': gc.get_freeze_count(),"
        " 'enabled': gc.isenabled()}))"
    )
    seen = json.loads(_python_output(script, cwd=tmp_path).strip().splitlines()[-1])
    assert seen["full"] == 0
    assert seen["frozen"] > 100_000
    assert seen["enabled"] is True
