"""`reliability-studio worker`: background jobs without the HTTP API.

For PostgreSQL deployments that scale jobs apart from the API; any number of workers
share the work through the database. (`serve` runs the same jobs in-process.)
Notifications are delivered here too (`NOTIFY_ENABLED`): dispatchers in any number of
processes claim rows with `FOR UPDATE SKIP LOCKED` and a lease, so none is sent twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from reliability_studio.alerts.correlator import Correlator
from reliability_studio.analysis.backends import build_backends, close_backends
from reliability_studio.analysis.runner import AnalysisRunner, analysis_settings
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.live.bus import PostgresBus
from reliability_studio.live.capture import install as install_live_capture
from reliability_studio.notify.bootstrap import apply_configured_notifications
from reliability_studio.notify.dispatcher import Dispatcher
from reliability_studio.notify.wake import install_wake
from reliability_studio.shutdown import exit_after
from reliability_studio.slos.scheduler import SLOScheduler
from reliability_studio.telemetry.prometheus import PrometheusClient

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Run the SLO scheduler, the alert correlator, the analysis runner and the notification
    dispatcher until SIGTERM or SIGINT.

    `NOTIFY_CONFIG_FILE` is applied first: a bad file raises `NotifyConfigError` before any
    job starts.
    """
    await apply_configured_notifications(settings)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    prometheus = PrometheusClient(
        settings.prometheus_url, timeout_seconds=settings.prometheus_timeout_seconds
    )
    jobs: list[Coroutine[Any, Any, None]] = []
    if settings.live_enabled and settings.database.backend == "postgresql":
        # What the worker changes (incidents the correlator opens...) reaches API clients.
        bus = PostgresBus(settings.database, None, settings.live_publish_interval_seconds)
        install_live_capture(sessionmaker, bus)
        jobs.append(bus.run_forever())
    if settings.slo_engine_enabled:
        jobs.append(SLOScheduler(sessionmaker, prometheus, settings).run_forever())
    if settings.alert_correlation_enabled:
        jobs.append(Correlator(sessionmaker, settings).run_forever())
    backends = build_backends(settings) if settings.analysis_enabled else None
    if backends is not None:
        runner = AnalysisRunner(sessionmaker, backends, analysis_settings(settings))
        jobs.append(runner.run_forever())
    dispatcher = Dispatcher(sessionmaker, settings) if settings.notify_enabled else None
    if dispatcher is not None:
        install_wake(sessionmaker, dispatcher.wake)
        jobs.append(dispatcher.run_forever())
    task = asyncio.ensure_future(asyncio.gather(*jobs))
    # Read once the jobs are cancelled below: a cancelled gather otherwise logs its error.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        exit_after(settings.shutdown_timeout_seconds)  # the bound holds whatever hangs

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    log.info("worker started", extra={"database": settings.database.render()})
    signalled = asyncio.ensure_future(stopping.wait())
    try:
        either: set[asyncio.Future[Any]] = {task, signalled}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the jobs ended by themselves: an error of theirs ends the worker
        else:
            log.info("worker stopping")
    finally:
        signalled.cancel()
        # The jobs are cancelled, not waited for: each one's work is a transaction or a
        # leased row, so nothing is lost; the dispatcher then hands back the rows it held at
        # once, rather than when their lease ends. A job that does not stop is left behind
        # after half the bound; `exit_after` (armed by the signal) keeps the whole bound.
        task.cancel()
        await asyncio.wait({task}, timeout=settings.shutdown_timeout_seconds / 2)
        if dispatcher is not None:  # before the engine goes
            await dispatcher.close()
        if backends is not None:
            await close_backends(backends)
        await prometheus.close()
        await engine.dispose()
