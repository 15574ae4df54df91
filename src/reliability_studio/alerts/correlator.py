"""The background correlator: runs correlation passes while there is work.

In `serve`, ingestion wakes it at once after each commit, so an incident opens within
milliseconds of its alert. It also looks for work every `ALERT_CORRELATION_POLL_SECONDS`,
which covers alerts ingested by another process and alerts left pending by a restart:
the queue is the `needs_correlation` flag in the database, never this process's memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.alerts.correlation import CorrelationSettings, correlate_pending
from reliability_studio.background import wait_to_be_woken
from reliability_studio.config import Settings
from reliability_studio.metrics import Metrics

log = logging.getLogger(__name__)


def correlation_settings(settings: Settings) -> CorrelationSettings:
    """The correlator's part of the settings."""
    return CorrelationSettings(
        batch_size=settings.alert_correlation_batch_size,
        detail_limit=settings.alert_timeline_detail_limit,
        summary_interval=timedelta(seconds=settings.alert_storm_summary_seconds),
    )


class Correlator:
    """Runs correlation passes until stopped; `wake()` asks for one now."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.settings = correlation_settings(settings)
        self.poll_seconds = settings.alert_correlation_poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass as soon as possible (cheap; safe to call on every ingest)."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Pass after pass while work is found; otherwise wait to be woken or to poll."""
        while True:
            self._wake.clear()
            try:
                while await self.run_once() >= self.settings.batch_size:
                    pass  # a full batch: more is waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert correlation pass failed; retrying")
            await wait_to_be_woken(self._wake, self.poll_seconds)

    async def run_once(self) -> int:
        """One pass in its own session; returns how many alerts it took."""
        started = time.perf_counter()
        async with self.sessionmaker() as session:
            taken = await correlate_pending(session, self.settings)
        if taken and self.metrics is not None:
            self.metrics.correlation_alerts.inc(taken)
            self.metrics.correlation_pass_seconds.observe(time.perf_counter() - started)
        return taken
