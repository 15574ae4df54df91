"""A small async client for Prometheus' HTTP API (`/api/v1/query`, `/api/v1/series`).

Errors come in two kinds the callers treat differently:
- `PrometheusUnavailableError`: cannot reach it, or it failed (5xx). Retried, then reported as
  "unknown"/"stale" by the caller, never as an error of the user's.
- `PrometheusQueryError`: it refused the query (4xx, `bad_data`): the user's PromQL is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reliability_studio.outbound.tls import default_ssl_context


class PrometheusUnavailableError(Exception):
    """Prometheus could not be reached or failed to answer."""


class PrometheusQueryError(Exception):
    """Prometheus refused a query as invalid."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and its (time, value) points."""

    labels: dict[str, str]
    points: list[tuple[datetime, float]]


class PrometheusClient:
    """Instant queries and series look-ups against one Prometheus."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._attempts = attempts
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
            verify=default_ssl_context(),
            headers={"User-Agent": "reliability-studio"},
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        """Evaluate `expr` at `at` (default now) and return the instant vector.

        A scalar result comes back as one sample without labels.
        """
        form = {"query": expr}
        if at is not None:
            form["time"] = f"{at.timestamp():.3f}"
        data = await self._call("POST", "/api/v1/query", data=form)
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar":
            return [Sample({}, _number(result[1]))]
        if result_type != "vector":
            raise PrometheusQueryError(f"expected an instant vector, got {result_type}")
        return [Sample(item.get("metric", {}), _number(item["value"][1])) for item in result]

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[RangeSeries]:
        """Evaluate `expr` every `step_seconds` from `start` to `end` (a matrix)."""
        form = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        data = await self._call("POST", "/api/v1/query_range", data=form)
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(f"expected a matrix, got {data.get('resultType')}")
        return [
            RangeSeries(
                item.get("metric", {}),
                [(datetime.fromtimestamp(float(t), UTC), _number(v)) for t, v in item["values"]],
            )
            for item in data.get("result", [])
        ]

    async def label_values(self, label: str, match: str) -> list[str]:
        """Values of `label` on the series that `match` selects."""
        data = await self._call("GET", f"/api/v1/label/{label}/values", params={"match[]": match})
        return [str(value) for value in data] if isinstance(data, list) else []

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry=retry_if_exception_type(PrometheusUnavailableError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._call_once(method, path, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_once(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise PrometheusUnavailableError(
                f"{self.base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusUnavailableError(
                f"{self.base_url}: HTTP {response.status_code}, not a Prometheus API answer"
            )
        error = str(body.get("error") or f"HTTP {response.status_code}")
        # Only 400 (bad_data) and 422 (execution) refuse the query itself. 503 is a timeout
        # or an overload; anything else (401, 404, 429, 5xx, ...) comes from something in
        # the way, such as a proxy or a wrong URL: never the user's PromQL.
        if response.status_code not in _ANSWERS or body.get("errorType") in _TRANSIENT:
            raise PrometheusUnavailableError(f"{self.base_url}: {error}")
        if body["status"] != "success":
            raise PrometheusQueryError(error)
        return body.get("data")


_ANSWERS = (200, 400, 422)
_TRANSIENT = ("timeout", "canceled", "unavailable")


def _number(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else math.nan
