"""The durable analysis queue: runs are rows, claimed with a lease, finished in one
transaction with their evidence, timeline events and hypotheses.

A run is queued in the same transaction as its incident (or by `POST .../analyze`). A
worker claims due runs (`FOR UPDATE SKIP LOCKED` on PostgreSQL), pushes their `due_at` a
lease ahead and counts the attempt, then gathers outside any transaction. If the process
dies, the lease runs out and the run is claimed again: a restart resumes it. The store
only lands if the run is still the claimant's (same attempt), so a slow worker whose lease
expired cannot write a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from reliability_studio.analysis.findings import Finding
from reliability_studio.analysis.gatherer import (
    Backends,
    Gathered,
    Target,
    downstream_services,
    gather,
    window_for,
)
from reliability_studio.analysis.hypotheses import EvidenceRef, rank
from reliability_studio.analysis.models import AnalysisRun, Evidence
from reliability_studio.analysis.similar import Document, most_similar
from reliability_studio.background import wait_to_be_woken
from reliability_studio.catalog.models import Service
from reliability_studio.catalog.telemetry import effective_telemetry
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.incidents.models import Incident
from reliability_studio.timeline.service import record_event

log = logging.getLogger(__name__)
ANALYSIS_ACTOR = "analysis"
MAX_ATTEMPTS = 3
PAST_INCIDENTS = 2000  # compared for similarity


@dataclass(frozen=True)
class AnalysisSettings:
    """What the runner needs from `Settings`."""

    lease: timedelta = timedelta(minutes=5)
    lookback: timedelta = timedelta(hours=2)
    backend_timeout_seconds: float = 5.0
    batch_size: int = 5


def analysis_settings(settings: Settings) -> AnalysisSettings:
    """The analysis runner's part of the settings."""
    return AnalysisSettings(
        lookback=timedelta(minutes=settings.analysis_lookback_minutes),
        backend_timeout_seconds=settings.analysis_backend_timeout_seconds,
    )


@dataclass(frozen=True)
class IncidentFacts:
    """What a run needs of its incident once the session that read it is closed."""

    id: uuid.UUID
    organization_id: uuid.UUID
    created_at: datetime
    text: str


class AnalysisRunner:
    """Claims and completes analysis runs until stopped; `wake()` asks for a look now."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        backends: Backends,
        settings: AnalysisSettings,
        poll_seconds: float = 2.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.backends = backends
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a look at the queue as soon as possible."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Work while runs are due; otherwise wait to be woken or to poll."""
        while True:
            self._wake.clear()
            try:
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("analysis pass failed; retrying")
            await wait_to_be_woken(self._wake, self.poll_seconds)

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim due runs and complete them; returns how many were claimed."""
        claimed = await self._claim(now or utcnow())
        for run_id, attempt in claimed:
            try:
                await self._complete(run_id, attempt)
            except Exception as error:  # one broken run must not abandon the others
                log.exception("analysis run failed", extra={"run_id": str(run_id)})
                await self._record_error(run_id, f"{type(error).__name__}: {error}")
        return len(claimed)

    async def _record_error(self, run_id: uuid.UUID, message: str) -> None:
        """Keep the failure on the run; its lease still decides when it is tried again."""
        async with self.sessionmaker() as session:
            await session.execute(
                update(AnalysisRun).where(AnalysisRun.id == run_id).values(error=message[:2000])
            )
            await session.commit()

    async def _claim(self, now: datetime) -> list[tuple[uuid.UUID, int]]:
        async with self.sessionmaker() as session:
            query = (
                select(AnalysisRun)
                .where(AnalysisRun.status.in_(("pending", "running")), AnalysisRun.due_at <= now)
                .order_by(AnalysisRun.due_at)
                .limit(self.settings.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = []
            for run in await session.scalars(query):
                if run.attempts >= MAX_ATTEMPTS:
                    run.status = "failed"
                    run.finished_at = now
                    run.error = run.error or f"gave up after {run.attempts} attempts"
                    continue
                run.status = "running"
                run.attempts += 1
                run.started_at = now
                run.due_at = now + self.settings.lease
                claimed.append((run.id, run.attempts))
            await session.commit()
        return claimed

    async def _complete(self, run_id: uuid.UUID, attempt: int) -> None:
        async with self.sessionmaker() as session:
            run = await session.get(AnalysisRun, run_id)
            if run is None:
                return
            incident = await session.scalar(
                select(Incident)
                .where(Incident.id == run.incident_id)
                .options(selectinload(Incident.services))
            )
            if incident is None:
                return
            targets = [
                Target(service.name, effective_telemetry(service.name, service.telemetry))
                for service in incident.services
            ]
            catalog = await _catalog(session, incident.organization_id)
            past = await _past_incidents(session, incident)
            facts = IncidentFacts(
                id=incident.id,
                organization_id=incident.organization_id,
                created_at=incident.created_at,
                text=f"{incident.title} {incident.description or ''}",
            )
            await session.rollback()  # no transaction held open while backends answer

        now = utcnow()
        window = window_for(facts.created_at, now, self.settings.lookback)
        gathered = await gather(
            self.backends,
            targets,
            window,
            timeout_seconds=self.settings.backend_timeout_seconds,
        )
        # One hop along the traces: the services errors originate in are looked at too.
        known = {target.name for target in targets}
        extra = [
            catalog[name]
            for name in downstream_services(gathered.findings) - known
            if name in catalog
        ]
        if extra:
            more = await gather(
                self.backends, extra, window, timeout_seconds=self.settings.backend_timeout_seconds
            )
            gathered.findings.extend(more.findings)
            for backend, state in more.backends.items():
                gathered.note(backend, state)

        await self._store(run_id, attempt, facts, gathered, past, now)

    async def _store(
        self,
        run_id: uuid.UUID,
        attempt: int,
        incident: IncidentFacts,
        gathered: Gathered,
        past: list[Document],
        now: datetime,
    ) -> None:
        async with self.sessionmaker() as session:
            still_ours = await session.execute(
                update(AnalysisRun)
                .where(
                    AnalysisRun.id == run_id,
                    AnalysisRun.attempts == attempt,
                    AnalysisRun.status == "running",
                )
                .values(status="done", finished_at=now, backends=gathered.backends, updated_at=now)
            )
            if still_ours.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return  # the lease ran out and another worker took the run
            refs = [
                EvidenceRef(str(_store_finding(session, incident, run_id, finding, now)), finding)
                for finding in gathered.findings
            ]
            hypotheses = rank(refs, incident.created_at)
            templates = " ".join(
                str(finding.figures.get("template", "")) for finding in gathered.findings
            )
            query = f"{incident.text} {templates}"
            similar = most_similar(query, past)
            await session.execute(
                update(AnalysisRun)
                .where(AnalysisRun.id == run_id)
                .values(
                    hypotheses={"items": [_plain(asdict(h)) for h in hypotheses]},
                    similar_incidents={"items": [asdict(match) for match in similar]},
                )
            )
            await session.commit()


def _store_finding(
    session: AsyncSession,
    incident: IncidentFacts,
    run_id: uuid.UUID,
    finding: Finding,
    now: datetime,
) -> uuid.UUID:
    evidence_id = uuid.uuid4()
    metadata = {
        "evidence_id": str(evidence_id),
        "service": finding.service,
        "component": finding.component,
        "score": finding.score,
        "query": finding.query,
        "link": finding.link,
        "figures": _plain(finding.figures),
        "signals": sorted(finding.signals),
    }
    event = record_event(
        session,
        organization_id=incident.organization_id,
        incident_id=incident.id,
        type=finding.kind,
        source=finding.source,
        title=finding.title[:500],
        actor=ANALYSIS_ACTOR,
        occurred_at=finding.started_at or now,
        metadata=metadata,
    )
    session.add(
        Evidence(
            id=evidence_id,
            organization_id=incident.organization_id,
            incident_id=incident.id,
            run_id=run_id,
            timeline_event_id=event.id,
            kind=finding.kind,
            source=finding.source,
            service=finding.service,
            component=finding.component[:500] if finding.component else None,
            title=finding.title[:500],
            score=finding.score,
            started_at=finding.started_at,
            query=finding.query,
            link=finding.link,
            figures=_plain(finding.figures),
            signals=sorted(finding.signals),
            created_at=now,
            updated_at=now,
        )
    )
    return evidence_id


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as RFC 3339 text, sets as sorted lists, the rest as is."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(item) for item in value)
    return value


async def _catalog(session: AsyncSession, organization_id: uuid.UUID) -> dict[str, Target]:
    return {
        service.name: Target(service.name, effective_telemetry(service.name, service.telemetry))
        for service in await session.scalars(
            select(Service).where(Service.organization_id == organization_id)
        )
    }


async def _past_incidents(session: AsyncSession, incident: Incident) -> list[Document]:
    rows = await session.execute(
        select(Incident.id, Incident.title, Incident.description, Incident.root_cause)
        .where(Incident.organization_id == incident.organization_id, Incident.id != incident.id)
        .order_by(Incident.created_at.desc())
        .limit(PAST_INCIDENTS)
    )
    return [
        Document(str(row.id), row.title, f"{row.description or ''} {row.root_cause or ''}")
        for row in rows
    ]
