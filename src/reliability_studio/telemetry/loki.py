"""A small async client for Grafana Loki's range queries (`GET /loki/api/v1/query_range`).

The shapes are Loki's documented ones (HTTP API reference, "Query logs within a range of time",
and its JSON encoder, `pkg/util/marshal/query.go`):

- `start`/`end` are sent as nanosecond Unix epochs (strings of digits); Loki returns entries with
  `start <= timestamp < end`.
- `streams` (log queries): `{"stream": {labels}, "values": [["<ns epoch>", "<line>"], ...]}`.
  When the `categorize-labels` encoding flag is on, each value has a third element
  `{"structuredMetadata": {...}, "parsed": {...}}`; without it Loki folds those labels into the
  stream's labels.
- `matrix` (metric queries): `{"metric": {labels}, "values": [[<seconds epoch>, "<value>"], ...]}`,
  the timestamp a JSON number (milliseconds as a fraction), the value a string ("NaN", "+Inf").
- `vector`: `{"metric": {labels}, "value": [<seconds epoch>, "<value>"]}`.
- Errors are `text/plain` bodies: 400 for a query Loki refuses (parse errors, limits, bad
  parameters), 401 without a tenant on a multi-tenant Loki, 429 when overloaded, 5xx on failure.

Errors come in kinds the callers treat differently:

- `LokiUnavailable`: no answer (connection refused, timeout), throttled (429), failed (5xx) or an
  answer that is not Loki's. Connection errors, 429 and 5xx are retried with backoff first. A
  read timeout is not: a query too slow once is as slow again, and the wait stays bounded by
  `timeout_seconds`. `LokiNotConfigured` is the `LokiUnavailable` of an empty base URL.
- `LokiQueryError`: Loki refused the query (400); it carries Loki's message, for the user.

No `httpx` exception leaves this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reliability_studio.outbound.tls import default_ssl_context

Direction = Literal["backward", "forward"]
ResultType = Literal["streams", "matrix", "vector"]

QUERY_RANGE_PATH = "/loki/api/v1/query_range"
TENANT_HEADER = "X-Scope-OrgID"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MESSAGE_CHARS = 1000


class LokiUnavailable(Exception):  # noqa: N818 (the name callers know it by)
    """Loki could not be reached, was throttled, failed, or answered something else."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class LokiNotConfigured(LokiUnavailable):
    """No Loki base URL is configured, so there is nothing to ask."""


class LokiQueryError(Exception):
    """Loki refused the query (HTTP 400); the message is Loki's own."""


@dataclass(frozen=True)
class LogLine:
    """One log entry.

    `timestamp` is UTC with microseconds (all a `datetime` holds); `timestamp_ns` is Loki's exact
    nanosecond epoch. `labels` are the stream's labels; `metadata` holds the per-line structured
    metadata and parsed labels when Loki sends them apart (the `categorize-labels` flag).
    """

    timestamp: datetime
    line: str
    labels: dict[str, str]
    timestamp_ns: int
    metadata: dict[str, str] = field(default_factory=dict)


class Point(NamedTuple):
    """One sample of a metric query: when (UTC) and the value."""

    timestamp: datetime
    value: float


@dataclass(frozen=True)
class Series:
    """One label set of a `matrix` result, its points oldest first."""

    labels: dict[str, str]
    points: list[Point]


@dataclass(frozen=True)
class Sample:
    """One element of a `vector` result."""

    labels: dict[str, str]
    timestamp: datetime
    value: float


@dataclass(frozen=True)
class LokiResult:
    """What a query returned. Only the list of its `result_type` is filled.

    `lines` merges all streams in the order asked for: newest first for `backward`, oldest first
    for `forward`. `stats` is Loki's statistics object as sent; `warnings` its warnings.
    """

    result_type: ResultType
    lines: list[LogLine] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class LokiClient:
    """Range queries against one Loki (or one tenant of it)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        tenant: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.tenant = tenant or None
        self._timeout_seconds = timeout_seconds
        self._attempts = max(1, attempts)
        headers = {"User-Agent": "reliability-studio"}
        if self.tenant is not None:
            headers[TENANT_HEADER] = self.tenant
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
            verify=default_ssl_context(),
            headers=headers,
        )

    @property
    def configured(self) -> bool:
        """Whether there is a base URL to ask."""
        return bool(self.base_url)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def query_range(
        self,
        query: str,
        start: datetime,
        end: datetime,
        *,
        limit: int = 1000,
        direction: Direction = "backward",
        step: str | None = None,
    ) -> LokiResult:
        """Run the LogQL `query` over `[start, end)` (timezone-aware datetimes).

        `limit` caps the log lines returned (all streams together); `direction` picks the newest
        (`backward`) or the oldest (`forward`) ones. `step` (a duration such as `"1m"`, or
        seconds) is the resolution of a metric query; Loki picks one when it is omitted.
        """
        if not self.configured:
            raise LokiNotConfigured(
                "Loki is not configured: set LOKI_URL to its base URL (e.g. http://loki:3100)"
            )
        params = {
            "query": query,
            "start": str(nanoseconds(start)),
            "end": str(nanoseconds(end)),
            "limit": str(limit),
            "direction": direction,
        }
        if step is not None:
            params["step"] = step
        body = await self._get(QUERY_RANGE_PATH, params)
        try:
            return _result(body, direction)
        except (KeyError, TypeError, ValueError, IndexError, InvalidOperation) as exc:
            raise LokiUnavailable(
                f"{self.base_url}: not a Loki query answer ({type(exc).__name__}: {exc})"
            ) from exc

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry=retry_if_exception(
                lambda exc: isinstance(exc, LokiUnavailable) and exc.retryable
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            # Not reaching Loki in time is worth another try; a query it is still working on
            # after `timeout_seconds` is not.
            retryable = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise LokiUnavailable(
                f"{self.base_url}: {type(exc).__name__} after {self._timeout_seconds:g} s",
                retryable=retryable,
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            retryable = isinstance(exc, httpx.TransportError) and not isinstance(
                exc, httpx.UnsupportedProtocol
            )
            raise LokiUnavailable(
                f"{self.base_url}: {type(exc).__name__}: {exc}", retryable=retryable
            ) from exc

        status = response.status_code
        if status == 400:
            raise LokiQueryError(_message(response))
        if status != 200:
            raise LokiUnavailable(
                f"{self.base_url}: HTTP {status}: {_message(response)}",
                retryable=status == 429 or status >= 500,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise LokiUnavailable(f"{self.base_url}: HTTP 200, not a Loki API answer")
        return body


def nanoseconds(moment: datetime) -> int:
    """`moment` as a nanosecond Unix epoch, exactly (no float rounding)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment!r}")
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def from_nanoseconds(value: int) -> datetime:
    """A nanosecond Unix epoch as a UTC datetime (microseconds: the rest is dropped)."""
    return EPOCH + timedelta(microseconds=value // 1000)


def _result(body: dict[str, Any], direction: Direction) -> LokiResult:
    data = body["data"]
    result_type, result = data["resultType"], data["result"]
    if not isinstance(result, list):
        raise TypeError(f"result is a {type(result).__name__}, not a list")
    stats = data.get("stats") if isinstance(data.get("stats"), dict) else {}
    warnings = [str(w) for w in body.get("warnings") or []]
    if result_type == "streams":
        lines = [line for stream in result for line in _stream_lines(stream)]
        # Each stream is sorted already; merge them in the asked order (a stable sort keeps
        # Loki's order between equal timestamps).
        lines.sort(key=lambda line: line.timestamp_ns, reverse=direction == "backward")
        return LokiResult("streams", lines=lines, stats=stats, warnings=warnings)
    if result_type == "matrix":
        series = [
            Series(
                _labels(item["metric"]),
                [Point(_seconds(t), _value(v)) for t, v in item["values"]],
            )
            for item in result
        ]
        return LokiResult("matrix", series=series, stats=stats, warnings=warnings)
    if result_type == "vector":
        samples = [
            Sample(_labels(item["metric"]), _seconds(item["value"][0]), _value(item["value"][1]))
            for item in result
        ]
        return LokiResult("vector", samples=samples, stats=stats, warnings=warnings)
    raise ValueError(f"unexpected resultType {result_type!r}")


def _stream_lines(stream: dict[str, Any]) -> list[LogLine]:
    labels = _labels(stream["stream"])
    lines = []
    for value in stream["values"]:
        stamp, line = value[0], value[1]
        if not isinstance(stamp, str) or not isinstance(line, str):
            raise TypeError(f"a stream value is {value!r}, not [ns string, line]")
        metadata: dict[str, str] = {}
        if len(value) > 2 and isinstance(value[2], dict):
            extra = value[2]
            for group in ("structuredMetadata", "parsed"):
                if isinstance(extra.get(group), dict):
                    metadata.update(_labels(extra[group]))
        ns = int(stamp)
        lines.append(LogLine(from_nanoseconds(ns), line, labels, ns, metadata))
    return lines


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise TypeError(f"labels are {raw!r}, not an object")
    return {str(name): str(value) for name, value in raw.items()}


def _seconds(raw: Any) -> datetime:
    """A Prometheus-style timestamp (seconds, milliseconds as a fraction) as a UTC datetime."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(f"timestamp {raw!r} is not a number")
    milliseconds = int((Decimal(str(raw)) * 1000).to_integral_value())
    return EPOCH + timedelta(milliseconds=milliseconds)


def _value(raw: Any) -> float:
    if not isinstance(raw, str):
        raise TypeError(f"sample value {raw!r} is not a string")
    return float(raw)


def _message(response: httpx.Response) -> str:
    """Loki's error text (plain text; a JSON `error`/`message` from something else in front)."""
    text = response.text.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = str(parsed.get("error") or parsed.get("message") or text)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "..."
    return text or f"HTTP {response.status_code} without a message"
