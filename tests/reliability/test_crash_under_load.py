"""Specification of crash safety: a write acknowledged with a 2xx survives `kill -9` of the
process, and an incident is never half-written.

A load generator (tests/support/load_writer.py: threads writing through the HTTP API as
fast as the server answers) runs while a real `reliability-studio serve` is SIGKILLed at
random moments and started again on the same port, several times. Afterwards the database
is read directly with SQL and compared with the writers' ledger:

- every acknowledged write is there, by id, with the content that was acknowledged (a
  PATCH whose answer was lost with the process may have committed too: what is stored is
  the last acknowledged revision or a later one that was sent);
- every incident, acknowledged or not, is whole: its two service links, exactly one
  automatic `incident_created` event, one queued analysis run, one `incident.created`
  notification in the outbox, and a severity that agrees with its severity-change events.

On PostgreSQL, every other kill also crashes PostgreSQL itself (`pg_ctl stop -m immediate`:
no checkpoint, recovery from the WAL at the next start), so an acknowledged commit must be
on disk, not only in the server's memory. On SQLite, `SQLITE_SYNCHRONOUS` is left at its
default (FULL): a kill of the process alone cannot tell FULL from OFF, as the operating
system keeps what was written; that promise rests on SQLite's documented behaviour.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.db.models import (
    AnalysisRun,
    Incident,
    IncidentService,
    IncidentTask,
    Notification,
    Service,
    TimelineEvent,
)
from tests.reliability.conftest import QUIET_JOBS, create_services, start_serve
from tests.support.load_writer import IncidentRecord, Ledger, LoadWriter, Revision, TaskRecord
from tests.support.postgres import PostgresServer, free_port
from tests.support.served import ServedProcess

KILLS = 5
# Load after the first acknowledged write of each process, before its kill: random, so that
# the kills land at arbitrary points of requests.
LOAD_SECONDS = (0.5, 2.5)
SERVICES = 6
WRITER_THREADS = 4
INCIDENT_REVISION = re.compile(r"^revision (\d+)$")
TASK_REVISION = re.compile(r" revision (\d+)$")


@dataclass
class Stored:
    """What the database holds, read with SQL after the last kill."""

    services: dict[str, str] = field(default_factory=dict)  # id -> name
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    events_of: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)
    notifications: Counter[tuple[str, str]] = field(default_factory=Counter)


async def _read(database_url: str) -> Stored:
    stored = Stored()
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with AsyncSession(engine) as db:
            for service in await db.scalars(select(Service)):
                stored.services[str(service.id)] = service.name
            for incident in await db.scalars(select(Incident)):
                stored.incidents[str(incident.id)] = {
                    "title": incident.title,
                    "description": incident.description,
                    "severity": incident.severity,
                }
            for link in await db.scalars(select(IncidentService)):
                stored.links[str(link.incident_id)].add(str(link.service_id))
            for row in await db.scalars(select(TimelineEvent)):
                event = {
                    "incident_id": str(row.incident_id),
                    "type": row.type,
                    "title": row.title,
                    "metadata": row.event_metadata,
                    "occurred_at": row.occurred_at,
                }
                stored.events[str(row.id)] = event
                stored.events_of[str(row.incident_id)].append(event)
            for task in await db.scalars(select(IncidentTask)):
                stored.tasks[str(task.id)] = {
                    "incident_id": str(task.incident_id),
                    "title": task.title,
                    "status": task.status,
                    "completed_at": task.completed_at,
                }
            for run in await db.scalars(select(AnalysisRun)):
                stored.runs[str(run.incident_id)] += 1
            for notification in await db.scalars(select(Notification)):
                stored.notifications[(str(notification.incident_id), notification.event)] += 1
    finally:
        await engine.dispose()
    return stored


def read_database(database_url: str) -> Stored:
    """Everything the checks need, straight from the database (no API in between)."""
    return asyncio.run(_read(database_url))


def _stored_revision(pattern: re.Pattern[str], text: str | None) -> int:
    """The revision number a stored text carries (0: never changed)."""
    match = pattern.search(text or "")
    return int(match.group(1)) if match else 0


def _check_revisions(
    what: str, revisions: list[Revision], stored_number: int, problems: list[str]
) -> Revision | None:
    """The revision the database holds must be the last acknowledged one or a later one that
    was sent (its answer lost with the process); returns it (None: the original)."""
    acknowledged = [r.number for r in revisions if r.acknowledged]
    last_acknowledged = max(acknowledged, default=0)
    if not last_acknowledged <= stored_number <= len(revisions):
        problems.append(
            f"{what}: holds revision {stored_number}; acknowledged up to {last_acknowledged}, "
            f"sent {len(revisions)}"
        )
        return None
    return revisions[stored_number - 1] if stored_number else None


def _check_incident(record: IncidentRecord, stored: Stored, problems: list[str]) -> None:
    row = stored.incidents.get(record.id)
    if row is None:
        problems.append(f"acknowledged incident {record.id} ({record.title}) is missing")
        return
    if row["title"] != record.title:
        problems.append(f"incident {record.id}: title {row['title']!r}, not {record.title!r}")
    if stored.links[record.id] != set(record.service_ids):
        problems.append(f"incident {record.id}: linked to {stored.links[record.id]}")
    number = _stored_revision(INCIDENT_REVISION, row["description"])
    revision = _check_revisions(f"incident {record.id}", record.revisions, number, problems)
    severity = record.severity if revision is None else revision.body["severity"]
    if number and revision is not None and row["severity"] != severity:
        problems.append(
            f"incident {record.id}: revision {number} stored with severity {row['severity']}, "
            f"sent with {severity}"
        )


def _check_task(record: TaskRecord, stored: Stored, problems: list[str]) -> None:
    row = stored.tasks.get(record.id)
    if row is None:
        problems.append(f"acknowledged task {record.id} ({record.title}) is missing")
        return
    if row["incident_id"] != record.incident_id:
        problems.append(f"task {record.id}: belongs to {row['incident_id']}")
    number = _stored_revision(TASK_REVISION, row["title"])
    revision = _check_revisions(f"task {record.id}", record.revisions, number, problems)
    expected = (record.title, "open") if revision is None else (revision.body["title"], "done")
    if (row["title"], row["status"]) != expected:
        problems.append(f"task {record.id}: stored {row['title']!r}/{row['status']}")
    if (row["status"] == "done") != (row["completed_at"] is not None):
        problems.append(f"task {record.id}: {row['status']} with completed_at")


def _check_whole(incident_id: str, stored: Stored, problems: list[str]) -> None:
    """An incident is all there, whether or not its creation was acknowledged."""
    row = stored.incidents[incident_id]
    links = stored.links[incident_id]
    if len(links) != 2 or not links <= stored.services.keys():
        problems.append(f"half-written incident {incident_id}: links {links}")
    events = stored.events_of[incident_id]
    created = [e for e in events if e["type"] == "incident_created"]
    if len(created) != 1:
        problems.append(f"half-written incident {incident_id}: {len(created)} created events")
    if stored.runs[incident_id] != 1:
        problems.append(f"half-written incident {incident_id}: {stored.runs[incident_id]} runs")
    if stored.notifications[(incident_id, "incident.created")] != 1:
        problems.append(f"half-written incident {incident_id}: no incident.created notification")
    changes = sorted(
        (e for e in events if e["type"] == "severity_change"), key=lambda e: e["occurred_at"]
    )
    if created:
        current = changes[-1]["metadata"]["to"] if changes else created[0]["metadata"]["severity"]
        if row["severity"] != current:
            problems.append(
                f"incident {incident_id}: severity {row['severity']}, its timeline says {current}"
            )


def verify(ledger: Ledger, service_ids: list[str], stored: Stored) -> list[str]:
    """Every difference between what was acknowledged and what is stored."""
    problems: list[str] = []
    for service_id in service_ids:
        if service_id not in stored.services:
            problems.append(f"acknowledged service {service_id} is missing")
    for incident in ledger.incidents:
        _check_incident(incident, stored, problems)
    for event in ledger.events:
        row = stored.events.get(event.id)
        if row is None or (row["incident_id"], row["title"]) != (event.incident_id, event.title):
            problems.append(f"acknowledged timeline event {event.id} ({event.title}): {row}")
    for task in ledger.tasks:
        _check_task(task, stored, problems)
    for incident_id in stored.incidents:
        _check_whole(incident_id, stored, problems)
    return problems


def _add_notification_policy(base_url: str) -> None:
    """A channel and a policy, so that each incident writes an outbox row with itself.
    (The dispatcher is off: nothing is sent; PagerDuty needs no address of ours.)"""
    with httpx.Client(base_url=base_url, timeout=10) as api:
        channel = api.post(
            "/api/notification-channels",
            json={"name": "pager", "config": {"kind": "pagerduty", "routing_key": "crash-test"}},
        )
        assert channel.status_code == 201, channel.text
        policy = api.post(
            "/api/notification-policies",
            json={
                "name": "every incident",
                "events": ["incident.created"],
                "channel_ids": [channel.json()["id"]],
            },
        )
        assert policy.status_code == 201, policy.text


def crash_repeatedly(
    cwd: Path, database_url: str, *, also_crash: Callable[[int], None] | None = None
) -> tuple[Ledger, list[str], float]:
    """Write under load while `serve` is SIGKILLed `KILLS` times (and started again but for
    the last time); `also_crash(n)` runs right before kill n. The ledger, the services, and
    how many seconds the load ran."""
    seed = random.randrange(1 << 30)
    print(f"crash test seed {seed}")  # the kill moments are random; this makes them traceable
    rng = random.Random(seed)
    port = free_port()
    settings = {"DATABASE_URL": database_url, **QUIET_JOBS}
    serve = start_serve(cwd, port, "serve-0.log", **settings)
    processes: list[ServedProcess] = [serve]
    try:
        service_ids = create_services(serve.base_url, SERVICES)
        _add_notification_policy(serve.base_url)
        started = time.monotonic()
        with LoadWriter(serve.base_url, service_ids, threads=WRITER_THREADS, seed=seed) as writer:
            for n in range(1, KILLS + 1):
                # Every kill lands under load: writes are being acknowledged by this process.
                writer.wait_for_acknowledgement(since=time.monotonic())
                time.sleep(rng.uniform(*LOAD_SECONDS))
                if also_crash is not None:
                    also_crash(n)
                serve.kill()  # SIGKILL: no shutdown code runs
                if n < KILLS:
                    serve = start_serve(cwd, port, f"serve-{n}.log", **settings)
                    processes.append(serve)
        return writer.ledger, service_ids, time.monotonic() - started
    finally:
        for process in processes:
            if process.process.poll() is None:
                process.kill()


def assert_nothing_lost(
    backend: str, database_url: str, ledger: Ledger, service_ids: list[str], seconds: float
) -> None:
    """The checks after the last kill, and the figures for docs/reliability.md."""
    stored = read_database(database_url)
    statuses = ledger.statuses()
    server_errors = ledger.unexpected(frozenset({200, 201, 503, None}))
    acknowledged = ledger.acknowledged + len(service_ids)
    figures = (
        f"{KILLS} kills in {seconds:.1f} s, {acknowledged} writes acknowledged, "
        f"{len(stored.incidents)} incidents stored, statuses {dict(statuses)}"
    )
    problems = verify(ledger, service_ids, stored)
    # A 4xx/5xx is a finding too: a 404 for what was acknowledged is a lost write, a 500 a bug.
    problems += [f"unexpected answer: {o}" for o in server_errors]
    assert not problems, f"{figures}; {len(problems)} problems:\n" + "\n".join(problems[:30])
    assert ledger.incidents, figures  # (each kill waited for acknowledged writes)
    print(
        f"crash test ({backend}): {figures}; every acknowledged write verified, "
        "no incident half-written"
    )


def test_acknowledged_writes_survive_kill_9_on_sqlite(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    ledger, service_ids, seconds = crash_repeatedly(tmp_path, database_url)
    assert_nothing_lost("sqlite", database_url, ledger, service_ids, seconds)


def test_acknowledged_writes_survive_kill_9_on_postgresql(
    durable_postgres: PostgresServer, tmp_path: Path
) -> None:
    name = f"crash_{uuid.uuid4().hex[:8]}"
    durable_postgres.create_database(name)
    database_url = durable_postgres.url(name)

    def crash_postgres_too(n: int) -> None:
        # Every other kill is a crash of the database as well: no checkpoint, WAL recovery.
        if n % 2 == 0:
            durable_postgres.stop(mode="immediate")
            durable_postgres.start()

    ledger, service_ids, seconds = crash_repeatedly(
        tmp_path, database_url, also_crash=crash_postgres_too
    )
    assert_nothing_lost("postgresql", database_url, ledger, service_ids, seconds)
