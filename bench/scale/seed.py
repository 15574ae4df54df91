"""Realistic data for the scale benchmark, generated inside PostgreSQL.

Every row is made by `INSERT ... SELECT` over `generate_series`, in chunks so that a progress
bar can follow: Python never holds the data, and 10 M timeline events take minutes, not
hours. The shape is that of a company two years into using the tool:

- services, with a skewed share of the incidents (a few services have most of them);
- incidents spread evenly over two years, with skewed severities. Only the newest
  `ACTIVE_INCIDENTS` are still being worked on (open, investigating, ...); every older one
  is resolved or closed. The number of open incidents does not grow with the history, which
  is what makes "the list at 10 k vs 1 M incidents" a fair comparison: both lists answer the
  same page, and only the history behind it differs;
- one to three services per incident (two on average);
- `events_per_incident` timeline events each, the first one `incident_created`;
- a task for every other incident.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

ACTIVE_INCIDENTS = 1_200
CHUNK = 50_000  # incidents per statement: a progress step of a few seconds at most
HISTORY_DAYS = 730


@dataclass(frozen=True)
class Size:
    """How much data to make."""

    services: int
    incidents: int
    events_per_incident: int
    tasks: int

    @property
    def events(self) -> int:
        """Timeline events in all."""
        return self.incidents * self.events_per_incident


FULL = Size(services=1_000, incidents=1_000_000, events_per_incident=10, tasks=500_000)
QUICK = Size(services=100, incidents=100_000, events_per_incident=10, tasks=50_000)
SMALL = Size(services=1_000, incidents=10_000, events_per_incident=10, tasks=5_000)
TINY = Size(services=20, incidents=2_000, events_per_incident=3, tasks=1_000)
TINY_SMALL = Size(services=20, incidents=500, events_per_incident=3, tasks=100)

# Severity by a uniform draw `r`: 12% critical, 23% high, 35% medium, 30% low.
SEVERITY_SQL = """CASE WHEN {r} < 0.12 THEN 'critical' WHEN {r} < 0.35 THEN 'high'
    WHEN {r} < 0.70 THEN 'medium' ELSE 'low' END"""
# Among the active incidents: half open, the rest being worked on.
ACTIVE_STATUS_SQL = """CASE WHEN {r} < 0.50 THEN 'open' WHEN {r} < 0.70 THEN 'investigating'
    WHEN {r} < 0.80 THEN 'identified' ELSE 'monitoring' END"""

SERVICES_SQL = """
INSERT INTO services (id, organization_id, name, team, repository_url, description,
                      created_at, updated_at)
SELECT gen_random_uuid(), $1, 'service-' || lpad(i::text, 4, '0'), 'team-' || (i % 60),
       'https://git.example.com/org/service-' || i, 'Seeded service ' || i,
       now() - interval '800 days', now() - interval '800 days'
FROM generate_series(1, $2) AS i
"""

# Incident number i (1 = oldest) is created at an even step across the history; the newest
# ACTIVE_INCIDENTS are still active. Times are whole steps, so that ids sort like numbers.
INCIDENTS_SQL = f"""
INSERT INTO incidents (id, organization_id, title, description, severity, status,
                       root_cause, commander, acknowledged_at, resolved_at, closed_at,
                       created_at, updated_at)
SELECT id, $1, 'Elevated error rate on checkout, case ' || i,
       'Seeded incident ' || i || ': 5xx above the SLO threshold',
       {SEVERITY_SQL.format(r="r1")},
       CASE WHEN i > $4 - {ACTIVE_INCIDENTS} THEN {ACTIVE_STATUS_SQL.format(r="r2")}
            WHEN r2 < 0.85 THEN 'closed' ELSE 'resolved' END,
       CASE WHEN i > $4 - {ACTIVE_INCIDENTS} THEN NULL ELSE 'A bad deploy, rolled back' END,
       'oncall-' || (i % 40),
       CASE WHEN i > $4 - {ACTIVE_INCIDENTS} AND r2 < 0.50 THEN NULL
            ELSE created + interval '4 minutes' END,
       CASE WHEN i > $4 - {ACTIVE_INCIDENTS} THEN NULL ELSE created + interval '50 minutes' END,
       CASE WHEN i > $4 - {ACTIVE_INCIDENTS} OR r2 >= 0.85 THEN NULL
            ELSE created + interval '3 days' END,
       created, created
FROM (
    SELECT i, gen_random_uuid() AS id, random() AS r1, random() AS r2,
           now() - make_interval(secs => (($4 - i + 1) * ({HISTORY_DAYS} * 86400.0 / $4))::float8)
               AS created
    FROM generate_series($2::int, $3::int) AS i
) AS numbered
"""  # noqa: S608 - only our own constants are formatted in

# A skewed pick of a service: the square of a uniform draw favours the first services.
LINKS_SQL = """
INSERT INTO incident_services (organization_id, incident_id, service_id, created_at)
SELECT DISTINCT ON (incident.id, service.id) $1, incident.id, service.id, incident.created_at
FROM (SELECT id, created_at, 1 + (random() * 2)::int AS links FROM incidents
      WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3) AS incident
CROSS JOIN LATERAL generate_series(1, incident.links) AS link
JOIN LATERAL (SELECT (floor(power(random(), 2) * $4) + link * 0)::int AS number) AS pick ON true
JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS number FROM services
      WHERE organization_id = $1) AS service ON service.number = pick.number
"""

EVENTS_SQL = """
INSERT INTO timeline_events (id, organization_id, incident_id, type, source, title,
                             description, occurred_at, metadata, actor, created_at)
SELECT gen_random_uuid(), $1, incident.id,
       CASE WHEN n = 1 THEN 'incident_created' ELSE 'note' END, 'user',
       CASE WHEN n = 1 THEN 'Incident opened with severity ' || incident.severity
            ELSE 'Update ' || n || ': still investigating' END,
       NULL, incident.created_at + n * interval '3 minutes',
       CASE WHEN n = 1 THEN jsonb_build_object('severity', incident.severity) ELSE NULL END,
       'oncall-' || (n % 40), incident.created_at + n * interval '3 minutes'
FROM (SELECT id, severity, created_at FROM incidents
      WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3) AS incident
CROSS JOIN generate_series(1, $4) AS n
"""

TASKS_SQL = """
INSERT INTO incident_tasks (id, organization_id, incident_id, title, description, status,
                            assignee, created_at, updated_at, completed_at)
SELECT gen_random_uuid(), $1, id, 'Write the postmortem', NULL,
       CASE WHEN status IN ('resolved', 'closed') THEN 'done' ELSE 'open' END,
       commander, created_at + interval '1 hour', created_at + interval '1 hour',
       CASE WHEN status IN ('resolved', 'closed') THEN created_at + interval '2 days' END
FROM (SELECT id, status, commander, created_at,
             row_number() OVER (ORDER BY created_at) AS number
      FROM incidents WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3)
     AS incident
WHERE number % $4 = 0
"""


async def seed(dsn: str, size: Size, *, label: str = "") -> None:
    """Fill the (migrated, empty) database at `dsn` with `size` worth of data."""
    connection = await asyncpg.connect(dsn)
    try:
        # Seeding is not a write anyone waits for; durability resumes for the measurements.
        await connection.execute("SET synchronous_commit = off")
        org = DEFAULT_ORGANIZATION_ID
        await connection.execute(SERVICES_SQL, org, size.services)
        with _progress() as progress:
            incidents = progress.add_task(f"{label}incidents", total=size.incidents)
            for start in range(1, size.incidents + 1, CHUNK):
                end = min(start + CHUNK - 1, size.incidents)
                await connection.execute(INCIDENTS_SQL, org, start, end, size.incidents)
                progress.advance(incidents, end - start + 1)
            await _fill_by_time_range(connection, progress, size, label)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def _fill_by_time_range(
    connection: asyncpg.Connection, progress: Progress, size: Size, label: str
) -> None:
    """Links, timeline events and tasks, one slice of the incidents' history at a time."""
    org = DEFAULT_ORGANIZATION_ID
    bounds = await connection.fetch(
        """SELECT created_at FROM (
               SELECT created_at, row_number() OVER (ORDER BY created_at) AS n FROM incidents
               WHERE organization_id = $1) AS numbered
           WHERE n % $2 = 1 ORDER BY created_at""",
        org,
        CHUNK,
    )
    edges = [row["created_at"] for row in bounds]
    last = await connection.fetchval("SELECT max(created_at) FROM incidents")
    edges.append(last + timedelta(seconds=1))
    links = progress.add_task(f"{label}service links", total=len(edges) - 1)
    events = progress.add_task(f"{label}timeline events", total=size.events)
    tasks = progress.add_task(f"{label}tasks", total=len(edges) - 1)
    every = max(1, round(size.incidents / max(size.tasks, 1)))
    for low, high in itertools.pairwise(edges):
        await connection.execute(LINKS_SQL, org, low, high, size.services)
        progress.advance(links)
        status = await connection.execute(EVENTS_SQL, org, low, high, size.events_per_incident)
        progress.advance(events, int(status.split()[-1]))
        await connection.execute(TASKS_SQL, org, low, high, every)
        progress.advance(tasks)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
