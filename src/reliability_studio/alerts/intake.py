"""The gate in front of every ingestion endpoint: the integration's secret token, and its
ingest rate limit.

Tokens are compared in constant time and never logged (the access log records the path
without the query string, so a `?token=` stays out of the logs too). Limits count alerts,
not requests, per integration and per process, with the `limits` library's sliding
window counter: cheap enough to check on every request of a storm.
"""

from __future__ import annotations

import hmac
import math
import time

import limits
from fastapi import Request
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from reliability_studio.api.problems import TooManyRequestsError, UnauthorizedError
from reliability_studio.config import Settings
from reliability_studio.metrics import Metrics

TOKEN_HEADER = "X-Integration-Token"  # noqa: S105 - a header name, not a secret


class IngestGate:
    """Authenticates and rate-limits ingestion requests for one process."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._tokens = {
            "alertmanager": settings.ingest_token_alertmanager,
            "grafana": settings.ingest_token_grafana,
            "api": settings.ingest_token_alerts,
        }
        self._locations = set(settings.ingest_token_locations)
        self._limit_text = settings.ingest_rate_limit
        self._limit = limits.parse(settings.ingest_rate_limit)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def has_token(self, integration: str) -> bool:
        """Whether `integration` has its own token (`INGEST_TOKEN_*`), checked by this gate."""
        return self._tokens.get(integration) is not None

    def authenticate(self, request: Request, integration: str) -> None:
        """401 unless the request carries the integration's token (if it has one)."""
        secret = self._tokens.get(integration)
        if secret is None:
            return  # an open integration: the README warns about this
        expected = secret.get_secret_value().encode()
        for offered in self._offered_tokens(request):
            if hmac.compare_digest(offered.encode(), expected):
                return
        self._refused(integration, "unauthorized")
        raise UnauthorizedError(
            f"the {integration} integration needs its token: " + " or ".join(self._where()),
            headers={"WWW-Authenticate": 'Bearer realm="alert ingestion"'},
        )

    def admit(self, integration: str, alerts: int) -> None:
        """429 with Retry-After when `alerts` more would pass the integration's limit."""
        if self._limiter.hit(self._limit, integration, cost=max(alerts, 1)):
            return
        self._refused(integration, "rate_limited")
        stats = self._limiter.get_window_stats(self._limit, integration)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequestsError(
            f"the {integration} integration is over its ingest limit of {self._limit_text} "
            f"alerts; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            extensions={
                "limit": {"integration": integration, "limit": self._limit_text},
                "alerts_in_request": alerts,
            },
        )

    def _refused(self, integration: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.alerts_refused.labels(integration, reason).inc()

    def _offered_tokens(self, request: Request) -> list[str]:
        offered = []
        if "header" in self._locations:
            authorization = request.headers.get("authorization", "")
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                offered.append(credentials.strip())
            if header := request.headers.get(TOKEN_HEADER):
                offered.append(header)
        if "query" in self._locations and (query := request.query_params.get("token")):
            offered.append(query)
        return offered

    def _where(self) -> list[str]:
        where = []
        if "header" in self._locations:
            where.append(f"'Authorization: Bearer <token>' or '{TOKEN_HEADER}'")
        if "query" in self._locations:
            where.append("'?token=<token>'")
        return where
