"""The durable evaluation schedule: every SLO with an SLI has a `next_evaluation_at`.

Each tick claims the SLOs that are due and pushes their next time one interval ahead in
the same transaction, then evaluates them. On PostgreSQL the claim uses
`FOR UPDATE SKIP LOCKED`, so any number of `serve` workers and `worker` processes share
the load and never evaluate one SLO twice; on SQLite writers are serialised anyway. The
schedule lives in the database, so a restart loses nothing: overdue SLOs are simply due.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.slos.models import SLO, SLOSnapshot
from reliability_studio.slos.runner import evaluate_and_store
from reliability_studio.telemetry.prometheus import PrometheusClient

log = logging.getLogger(__name__)
PRUNE_EVERY = timedelta(hours=1)


class SLOScheduler:
    """Runs due SLO evaluations until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: PrometheusClient,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.client = client
        self.settings = settings
        self._last_prune: datetime | None = None

    async def run_forever(self) -> None:
        """Tick every `slo_scheduler_tick_seconds`; errors are logged, never fatal."""
        while True:
            try:
                while await self.tick() >= self.settings.slo_batch_size:
                    pass  # a full batch: more may be due right now
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLO evaluation tick failed")
            await asyncio.sleep(self.settings.slo_scheduler_tick_seconds)

    async def tick(self, now: datetime | None = None) -> int:
        """Evaluate the SLOs due at `now`; returns how many were claimed."""
        now = now or utcnow()
        slo_ids = await self.claim_due(now)
        if slo_ids:
            await evaluate_and_store(self.sessionmaker, self.client, self.settings, slo_ids, now)
        await self._prune_history(now)
        return len(slo_ids)

    async def claim_due(self, now: datetime) -> list[uuid.UUID]:
        """Take up to a batch of due SLOs and move their next evaluation one interval on."""
        interval = timedelta(seconds=self.settings.slo_evaluation_interval_seconds)
        async with self.sessionmaker() as session:
            query = (
                select(SLO.id)
                .where(SLO.next_evaluation_at <= now)
                .order_by(SLO.next_evaluation_at)
                .limit(self.settings.slo_batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            slo_ids = list((await session.scalars(query)).all())
            if slo_ids:
                # Scheduling bookkeeping, not part of the SLO as the API shows it: no new
                # version (ETag) here; storing the evaluation moves it.
                await session.execute(
                    update(SLO).where(SLO.id.in_(slo_ids)).values(next_evaluation_at=now + interval)
                )
            await session.commit()
        return slo_ids

    async def _prune_history(self, now: datetime) -> None:
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        cutoff = now - timedelta(days=self.settings.slo_history_retention_days)
        async with self.sessionmaker() as session:
            await session.execute(delete(SLOSnapshot).where(SLOSnapshot.evaluated_at < cutoff))
            await session.commit()
