"""Operational endpoints: `/health` and `/metrics`."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from reliability_studio import __version__
from reliability_studio.api.problems import DATABASE_RETRY_AFTER_SECONDS
from reliability_studio.live.status import live_status

HEALTH_CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 when the database answers within 2 s; 503 with `Retry-After` when it does not.

    `checks.live` reports the live stream (`ok`, `connecting`, `off`) without deciding the
    answer: the API works while the stream reconnects."""
    settings = request.app.state.settings
    try:
        async with request.app.state.sessionmaker() as session:
            await asyncio.wait_for(
                session.execute(text("SELECT 1")), timeout=HEALTH_CHECK_TIMEOUT_SECONDS
            )
        database = {"status": "ok", "backend": settings.database.backend}
    except Exception as exc:  # any failure means "not healthy", never a 500
        log.warning("health check failed", extra={"error": repr(exc)})
        database = {
            "status": "unavailable",
            "backend": settings.database.backend,
            "error": type(exc).__name__,
        }
        return JSONResponse(
            {"status": "unavailable", "version": __version__, "checks": {"database": database}},
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    checks = {"database": database, "live": live_status(request.app.state)}
    return JSONResponse({"status": "ok", "version": __version__, "checks": checks})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
