"""The application factory: wires settings, database, middleware and routers together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from reliability_studio import __version__
from reliability_studio.alerts.correlator import Correlator
from reliability_studio.alerts.ingest_router import routers as ingest_routers
from reliability_studio.alerts.intake import IngestGate
from reliability_studio.alerts.router import router as alerts_router
from reliability_studio.alerts.rules_router import router as correlation_rules_router
from reliability_studio.analysis.backends import build_backends, close_backends
from reliability_studio.analysis.router import router as analysis_router
from reliability_studio.analysis.runner import AnalysisRunner, analysis_settings
from reliability_studio.api.health import router as health_router
from reliability_studio.api.input_limits import JSONLimitsMiddleware, check_query
from reliability_studio.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from reliability_studio.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from reliability_studio.api.security_headers import SecurityHeadersMiddleware
from reliability_studio.audit.router import router as audit_router
from reliability_studio.catalog.router import router as services_router
from reliability_studio.collector import settle_after_start_up
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.idempotency.middleware import idempotency_key, install_idempotency
from reliability_studio.identity.dependencies import SIGN_IN_PATHS, authorize
from reliability_studio.identity.oidc_router import router as auth_router
from reliability_studio.identity.permissions import PUBLIC, requirement
from reliability_studio.identity.router import router as identity_router
from reliability_studio.identity.routes import unlisted_routes
from reliability_studio.identity.throttle import AuthThrottle
from reliability_studio.identity.token_cache import TokenCache, install_forgetting
from reliability_studio.incidents.router import router as incidents_router
from reliability_studio.live.bus import PostgresBus, build_bus
from reliability_studio.live.capture import install as install_live_capture
from reliability_studio.live.hub import Hub
from reliability_studio.live.router import router as live_router
from reliability_studio.live.settings import live_settings
from reliability_studio.logs import configure_logging
from reliability_studio.metrics import Metrics
from reliability_studio.notify.bootstrap import apply_configured_notifications
from reliability_studio.notify.dispatcher import Dispatcher
from reliability_studio.notify.router import router as notify_router
from reliability_studio.notify.wake import install_wake
from reliability_studio.organizations.router import router as organizations_router
from reliability_studio.shutdown import exit_after
from reliability_studio.slos.openslo_router import router as openslo_router
from reliability_studio.slos.router import router as slos_router
from reliability_studio.slos.rules_router import router as slo_rules_router
from reliability_studio.slos.scheduler import SLOScheduler
from reliability_studio.tasks.router import router as tasks_router
from reliability_studio.telemetry.prometheus import PrometheusClient
from reliability_studio.timeline.router import router as timeline_router

DESCRIPTION = """
Reliability Studio keeps your service catalog, runs incidents with a timeline and action
items, tracks SLOs, and turns alerts into incidents.

Errors are `application/problem+json` (RFC 9457); validation errors list the fields.
Lists return `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `cursor`.
"""


def create_app(settings: Settings | None = None, *, bounded_shutdown: bool = False) -> FastAPI:
    """A ready-to-serve application for `settings` (read from the environment by default).

    `bounded_shutdown` (for `serve`, never for an app inside another program such as a test)
    ends the process if the lifespan's cleanup outlasts SHUTDOWN_TIMEOUT_SECONDS."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await apply_configured_notifications(settings)  # NOTIFY_CONFIG_FILE; fails fast
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.prometheus = PrometheusClient(
            settings.prometheus_url, timeout_seconds=settings.prometheus_timeout_seconds
        )
        # Checks at write time must not keep a user waiting on a Prometheus that is down.
        app.state.prometheus_checker = PrometheusClient(
            settings.prometheus_url, timeout_seconds=3.0, attempts=1
        )
        background: list[asyncio.Task[None]] = []
        hub = None
        if settings.live_enabled:
            hub = Hub(
                settings.live_client_buffer,
                settings.live_frame_interval_seconds,
                on_drop=metrics.live_clients_dropped.inc,
            )
            metrics.live_clients.set_function(lambda: hub.client_count)
            app.state.live_hub = hub
        # On PostgreSQL the bus's connection also hears of credential changes, which the
        # token cache needs whether live updates are on or not.
        token_cache = TokenCache() if settings.database.backend == "postgresql" else None
        app.state.token_cache = token_cache
        watchers = [token_cache] if token_cache is not None else []
        bus = build_bus(settings.database, hub, settings.live_publish_interval_seconds, watchers)
        if hub is not None:
            install_live_capture(app.state.sessionmaker, bus)
        if isinstance(bus, PostgresBus):
            app.state.live_bus = bus
            background.append(asyncio.create_task(bus.run_forever(), name="live-bus"))
        if token_cache is not None:
            install_forgetting(app.state.sessionmaker, token_cache)
        if settings.slo_engine_enabled:
            scheduler = SLOScheduler(app.state.sessionmaker, app.state.prometheus, settings)
            background.append(asyncio.create_task(scheduler.run_forever(), name="slo-scheduler"))
        backends = build_backends(settings) if settings.analysis_enabled else None
        if backends is not None:
            runner = AnalysisRunner(app.state.sessionmaker, backends, analysis_settings(settings))
            app.state.analysis_runner = runner
            background.append(asyncio.create_task(runner.run_forever(), name="analysis"))
        dispatcher = (
            Dispatcher(app.state.sessionmaker, settings) if settings.notify_enabled else None
        )
        if dispatcher is not None:
            app.state.dispatcher = dispatcher
            install_wake(app.state.sessionmaker, dispatcher.wake)
            background.append(asyncio.create_task(dispatcher.run_forever(), name="dispatcher"))
        if settings.alert_correlation_enabled:
            correlator = Correlator(app.state.sessionmaker, settings, metrics)
            app.state.correlator = correlator
            background.append(asyncio.create_task(correlator.run_forever(), name="correlator"))
        try:
            yield
        finally:
            if bounded_shutdown:  # `serve`: a stuck task or a database that stopped
                # answering must not hold the process up for ever (see shutdown.py)
                exit_after(settings.shutdown_timeout_seconds)
            for task in background:
                task.cancel()
            if background:  # done at once, normally; a stuck one is left behind
                await asyncio.wait(background, timeout=settings.shutdown_timeout_seconds / 2)
            if backends is not None:
                await close_backends(backends)
            if dispatcher is not None:
                await dispatcher.close()
            await app.state.prometheus.close()
            await app.state.prometheus_checker.close()
            await engine.dispose()

    app = FastAPI(
        title="Reliability Studio",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # After `authorize`: an Idempotency-Key belongs to the caller it names.
        dependencies=[Depends(authorize), Depends(check_query), Depends(idempotency_key)],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.live_settings = live_settings(settings)
    app.state.ingest_gate = IngestGate(settings, metrics)
    app.state.auth_throttle = AuthThrottle(
        settings.auth_failure_limit, settings.auth_endpoint_limit
    )
    _document_problems_as_problem_json(app)
    metrics.watch_pool(lambda: getattr(getattr(app.state, "engine", None), "pool", None))

    install_problem_handlers(app)
    # FastAPI prepares a router's routes when a request is first matched against it, so the
    # routers most requests go to come first (this matters to the tests: an app each).
    for router in (
        health_router,
        services_router,
        incidents_router,
        timeline_router,
        tasks_router,
        slos_router,
        slo_rules_router,
        openslo_router,
        *ingest_routers,
        alerts_router,
        correlation_rules_router,
        analysis_router,
        notify_router,
        identity_router,
        organizations_router,
        auth_router,
        audit_router,
    ):
        app.include_router(router)
    if settings.live_enabled:
        app.include_router(live_router)
    if unlisted := unlisted_routes(app):  # a route nobody decided who may call
        raise RuntimeError(f"routes missing from the permission matrix: {unlisted}")

    install_idempotency(app)  # innermost middleware: keeps the app's own response headers
    app.add_middleware(JSONLimitsMiddleware)  # inside the size limit, which bounds its buffer
    # Added last = outermost: ids and logs wrap everything, including CORS and size limits.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Location", "X-Request-ID", "Retry-After"],
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def _document_problems_as_problem_json(app: FastAPI) -> None:
    """List error schemas under `application/problem+json`, the media type they are sent as.

    FastAPI files every response `model` under the route's media type (`application/json`);
    the problem responses name their real one, so the schema is moved there.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        for template, path in document.get("paths", {}).items():
            for method, operation in path.items():
                responses = operation.get("responses", {})
                for response in responses.values():
                    content = response.get("content", {})
                    if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                _document_access_problems(method.upper(), template, responses)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_ACCESS_PROBLEMS = {
    401: "Not signed in, or the credential is not valid",
    403: "Signed in, but without the role this needs",
    429: "Too many failed sign-ins from this address, or over a token or ingest rate limit",
}


def _document_access_problems(method: str, template: str, responses: dict[str, Any]) -> None:
    """Declare the 401, 403 and 429 that `authorize` may answer on any route it guards.

    The routes do not list them (the dependency is the app's, not theirs), so without this
    the document promised statuses that a caller with a stale token or the wrong role gets
    anyway; the fuzzer found them (e.g. 403 on `POST /api/organizations`, 429 on sign-in).
    """
    public = requirement(method, template) == PUBLIC
    for status, description in _ACCESS_PROBLEMS.items():
        if public and not (status == 429 and template.startswith(SIGN_IN_PATHS)):
            continue
        response = responses.setdefault(str(status), {"description": description})
        content = response.setdefault("content", {})
        content.setdefault(PROBLEM_MEDIA_TYPE, {"schema": {"$ref": "#/components/schemas/Problem"}})
        if status == 429:
            response.setdefault("headers", {}).setdefault(
                "Retry-After", {"description": "Seconds to wait.", "schema": {"type": "string"}}
            )


def create_served_app() -> FastAPI:
    """The factory `serve` hands to uvicorn: JSON logs, then the app (once per worker)."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings, bounded_shutdown=True)
    settle_after_start_up()  # the collector must not pause requests (see collector.py)
    return app
