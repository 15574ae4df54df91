"""A small async client for Grafana Tempo's HTTP API (`/api/search`, `/api/traces/<id>`).

Shapes, as documented (grafana/tempo `docs/sources/tempo/api_docs/_index.md` and
`api_docs/pushing-spans-with-http.md`) and as Tempo's Go code writes them (gogo `jsonpb`,
which leaves out zero values):

- Search (`GET /api/search?q=<TraceQL>&start=<unix s>&end=<unix s>&limit=&spss=`) answers
  `{traces:[{traceID, rootServiceName, rootTraceName, startTimeUnixNano, durationMs,
  spanSets:[{spans:[{spanID, name, startTimeUnixNano, durationNanos, attributes}], matched}]}],
  metrics}`. Tempo 2.x also sends the deprecated single `spanSet` (older ones only that one).
  Zero values are left out: no `traces` when nothing matched, no `durationMs` under 1 ms, no
  `rootTraceName` (and `rootServiceName` "<root span not yet received>") while the root span is
  missing. `traceID` is hex with its leading zeros removed; 64-bit nanosecond numbers are strings.
  `start`/`end` are whole seconds (Tempo parses them as 32-bit integers) and `end` must be after
  `start`, else Tempo answers 400.
- Trace by id (`GET /api/traces/<hex id>`) answers OTLP JSON under `batches` (the v2 API and the
  OTLP spec say `resourceSpans`), with `scopeSpans` (`instrumentationLibrarySpans` before OTLP
  0.15). Up to Tempo 2.8 `traceId`/`spanId`/`parentSpanId` are base64 (protobuf's JSON mapping,
  grafana/tempo#5437); later versions write hex as the OTLP spec says. Enums are names
  (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`) where the OTLP spec has numbers. All are read, and
  every id comes out as lowercase hex: 32 digits for a trace, 16 for a span.

Errors, by what the caller does with them:
- `TempoUnavailable`: cannot reach it, it failed (5xx) or shed load (429), each retried with
  backoff first; or something other than Tempo answered (401 from a proxy, HTML): never the
  user's fault.
- `TempoQueryError`: Tempo refused the query (400, with its message), or the arguments could not
  make a valid request (a trace id that is not hex, `end` before `start`).
- `TempoTraceNotFound`: 404 for that trace id.
- `TempoNotConfigured`: no usable Tempo URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reliability_studio.outbound.tls import default_ssl_context

AttributeValue: TypeAlias = (
    str | bool | int | float | bytes | list["AttributeValue"] | dict[str, "AttributeValue"] | None
)

ROOT_SPAN_NOT_YET_RECEIVED = "<root span not yet received>"
"""What Tempo's search gives as `rootServiceName` while a trace's root span is missing."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_ERROR = 2
_MESSAGE_LIMIT = 500


# The names are the contract; the module's base class carries the Error suffix.
class TempoError(Exception):
    """Base class of this client's errors."""


class TempoUnavailable(TempoError):  # noqa: N818
    """Tempo could not be reached, failed, shed load, or something else answered."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # worth another attempt


class TempoQueryError(TempoError):
    """Tempo refused the query as invalid (HTTP 400), or it could not be asked at all."""


class TempoTraceNotFound(TempoError):  # noqa: N818
    """Tempo has no trace with that id (HTTP 404)."""


class TempoNotConfigured(TempoError):  # noqa: N818
    """No usable Tempo URL is configured."""


@dataclass(frozen=True)
class MatchedSpan:
    """A span of a search result's span set: only what the query selected."""

    span_id: str
    name: str | None  # older Tempo versions leave it out
    start: datetime
    duration: timedelta
    attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class SpanSet:
    """The spans of one trace that matched; `matched` counts them all, `spans` is capped (spss)."""

    spans: tuple[MatchedSpan, ...]
    matched: int


@dataclass(frozen=True)
class TraceSummary:
    """One trace found by a search."""

    trace_id: str
    root_service_name: str | None  # None while the root span is not yet received
    root_trace_name: str | None
    start: datetime
    duration: timedelta  # whole milliseconds; zero when Tempo leaves it out (under 1 ms)
    span_sets: tuple[SpanSet, ...]


@dataclass(frozen=True)
class Span:
    """One span of a trace, with its resource's `service.name`."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service_name: str | None
    name: str
    kind: str  # "server", "client", "internal", "producer", "consumer" or "unspecified"
    start: datetime
    end: datetime
    duration: timedelta
    is_error: bool
    status_message: str | None
    attributes: dict[str, AttributeValue]
    resource_attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class Trace:
    """A whole trace: its spans in start order."""

    trace_id: str
    spans: tuple[Span, ...]

    def error_spans(self) -> list[Span]:
        """The spans whose status is error."""
        return [span for span in self.spans if span.is_error]

    def children_of(self, span_id: str) -> list[Span]:
        """The spans whose parent is `span_id` (any case of hex), in start order."""
        parent = span_id.strip().lower()
        return [span for span in self.spans if span.parent_span_id == parent]


class TempoClient:
    """Trace search and trace look-ups against one Tempo (query frontend or monolith)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        tenant: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _checked_base_url(base_url)
        self._timeout_seconds = timeout_seconds
        self._attempts = max(1, attempts)
        headers = {"User-Agent": "reliability-studio", "Accept": "application/json"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
            verify=default_ssl_context(),
            headers=headers,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def search(
        self,
        q: str,
        start: datetime,
        end: datetime,
        *,
        limit: int = 20,
        spss: int | None = None,
    ) -> list[TraceSummary]:
        """The traces that the TraceQL query `q` finds between `start` and `end`.

        The window is widened to whole seconds (naive datetimes are UTC). Newest first.
        """
        first, last = _unix_seconds(start, math.floor), _unix_seconds(end, math.ceil)
        if last < first:
            raise TempoQueryError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
        params: dict[str, str | int] = {
            "q": q,
            "start": first,
            "end": max(last, first + 1),  # Tempo wants end > start
            "limit": limit,
        }
        if spss is not None:
            params["spss"] = spss
        body = await self._get("/api/search", params=params)
        try:
            summaries = [_summary(item) for item in _list(body.get("traces"))]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._not_tempo(f"unreadable search answer: {exc}") from exc
        return sorted(summaries, key=lambda summary: summary.start, reverse=True)

    async def trace(self, trace_id: str) -> Trace:
        """The whole trace `trace_id` (hex, any case, leading zeros optional)."""
        wanted = _requested_trace_id(trace_id)
        body = await self._get(f"/api/traces/{wanted}", not_found=wanted)
        try:
            spans = _spans(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._not_tempo(f"unreadable trace answer: {exc}") from exc
        if not spans:
            raise TempoTraceNotFound(f"trace {wanted} has no spans")
        return Trace(wanted, tuple(sorted(spans, key=lambda span: (span.start, span.span_id))))

    async def _get(
        self, path: str, *, params: dict[str, str | int] | None = None, not_found: str | None = None
    ) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, params=params, not_found=not_found)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(
        self, path: str, *, params: dict[str, str | int] | None, not_found: str | None
    ) -> dict[str, Any]:
        try:
            # httpx's timeouts bound each read; this bounds the whole attempt, so that an
            # answer trickling in byte by byte cannot hold the caller.
            async with asyncio.timeout(self._timeout_seconds):
                response = await self._http.get(path, params=params)
        except TimeoutError as exc:
            raise TempoUnavailable(
                f"{self.base_url}: no answer within {self._timeout_seconds:g} s", transient=True
            ) from exc
        except httpx.HTTPError as exc:
            raise TempoUnavailable(
                f"{self.base_url}: {type(exc).__name__}: {exc}", transient=True
            ) from exc
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise self._not_tempo(f"HTTP 200 ({_content_type(response)}), not Tempo JSON")
            return body
        message = _message(response)
        if status == 400:
            raise TempoQueryError(message or "HTTP 400 from Tempo")
        if status == 404 and not_found is not None:
            raise TempoTraceNotFound(
                f"trace {not_found} not found" + (f": {message}" if message else "")
            )
        detail = f"{self.base_url}: HTTP {status}" + (f": {message}" if message else "")
        # 429 (Tempo's frontend sheds load) and 5xx are worth another attempt; any other status
        # comes from something in the way (an auth proxy, a wrong URL) and will not change.
        raise TempoUnavailable(detail, transient=status == 429 or status >= 500)

    def _not_tempo(self, detail: str) -> TempoUnavailable:
        return TempoUnavailable(f"{self.base_url}: {detail}")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TempoUnavailable) and exc.transient


def _checked_base_url(base_url: str) -> str:
    text = (base_url or "").strip().rstrip("/")
    if not text:
        raise TempoNotConfigured("no Tempo URL is configured (TEMPO_URL)")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise TempoNotConfigured(f"TEMPO_URL {text!r} is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise TempoNotConfigured(f"TEMPO_URL {text!r} is not an http(s) URL with a host")
    return text


def _unix_seconds(moment: datetime, rounding: Callable[[float], int]) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return rounding(moment.timestamp())


def _requested_trace_id(trace_id: str) -> str:
    text = trace_id.strip()
    if not text or not set(text) <= _HEX_DIGITS or len(text) > 2 * _TRACE_ID_BYTES:
        raise TempoQueryError(f"{trace_id!r} is not a trace id (1 to 32 hex digits)")
    return text.lower().rjust(2 * _TRACE_ID_BYTES, "0")


def _message(response: httpx.Response) -> str:
    text = response.text.strip()
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


def _content_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "no content type"))


# --- reading the answers ----------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _nanos(value: Any) -> int:
    """A 64-bit number of nanoseconds: a string in JSON, a number from lenient writers."""
    if value is None or value == "":
        return 0
    return int(value)


def _instant(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def _hex_id(value: Any, size: int) -> str | None:
    """An id from hex (any case, leading zeros optional) or base64, as lowercase hex.

    Base64 of 8 or 16 bytes always ends with "=" and hex never does, so they cannot be confused.
    All zeros, like an empty id, means no id.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if len(text) <= 2 * size and set(text) <= _HEX_DIGITS:
        hex_id = text.lower().rjust(2 * size, "0")
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"id {text!r} is neither hex nor base64") from exc
        if len(raw) > size:
            raise ValueError(f"id {text!r} is longer than {size} bytes")
        hex_id = raw.hex().rjust(2 * size, "0")
    return None if set(hex_id) == {"0"} else hex_id


def _value(value: Any) -> AttributeValue:
    """An OTLP `AnyValue` as a Python value."""
    value = _dict(value)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])  # also reads jsonpb's "NaN" and "Infinity"
    if "arrayValue" in value:
        return [_value(item) for item in _list(_dict(value["arrayValue"]).get("values"))]
    if "kvlistValue" in value:
        return _attributes(_dict(value["kvlistValue"]).get("values"))
    if "bytesValue" in value:
        return base64.b64decode(str(value["bytesValue"]))
    return None


def _attributes(items: Any) -> dict[str, AttributeValue]:
    """OTLP `KeyValue`s as a dict."""
    return {
        str(item["key"]): _value(item.get("value"))
        for item in _list(items)
        if isinstance(item, dict) and "key" in item
    }


def _summary(item: dict[str, Any]) -> TraceSummary:
    trace_id = _hex_id(item.get("traceID"), _TRACE_ID_BYTES)
    if trace_id is None:
        raise ValueError("a trace without traceID")
    root_service = _text(item.get("rootServiceName"))
    if "spanSets" in item:
        span_sets = _list(item["spanSets"])
    else:  # before Tempo 2.2 only the one span set
        span_sets = [item["spanSet"]] if isinstance(item.get("spanSet"), dict) else []
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=None if root_service == ROOT_SPAN_NOT_YET_RECEIVED else root_service,
        root_trace_name=_text(item.get("rootTraceName")),
        start=_instant(_nanos(item.get("startTimeUnixNano"))),
        duration=timedelta(milliseconds=int(item.get("durationMs") or 0)),
        span_sets=tuple(_span_set(_dict(span_set)) for span_set in span_sets),
    )


def _span_set(item: dict[str, Any]) -> SpanSet:
    spans = tuple(_matched_span(_dict(span)) for span in _list(item.get("spans")))
    return SpanSet(spans=spans, matched=int(item.get("matched") or 0))


def _matched_span(item: dict[str, Any]) -> MatchedSpan:
    return MatchedSpan(
        span_id=_hex_id(item.get("spanID"), _SPAN_ID_BYTES) or "",
        name=_text(item.get("name")),
        start=_instant(_nanos(item.get("startTimeUnixNano"))),
        duration=timedelta(microseconds=_nanos(item.get("durationNanos")) // 1000),
        attributes=_attributes(item.get("attributes")),
    )


def _spans(body: dict[str, Any]) -> list[Span]:
    """The spans of a trace answer: `batches` (Tempo's v1 API) or `resourceSpans` (OTLP)."""
    batches = body["batches"] if "batches" in body else body.get("resourceSpans")
    spans: list[Span] = []
    for batch in _list(batches):
        batch = _dict(batch)
        resource = _attributes(_dict(batch.get("resource")).get("attributes"))
        service = resource.get("service.name")
        if "scopeSpans" in batch:
            scopes = _list(batch["scopeSpans"])
        else:  # OTLP before 0.15 (Tempo 1.x)
            scopes = _list(batch.get("instrumentationLibrarySpans"))
        for scope in scopes:
            for item in _list(_dict(scope).get("spans")):
                spans.append(_span(_dict(item), service, resource))
    return spans


def _span(item: dict[str, Any], service: AttributeValue, resource: dict[str, Any]) -> Span:
    span_id = _hex_id(item.get("spanId"), _SPAN_ID_BYTES)
    if span_id is None:
        raise ValueError("a span without spanId")
    start, end = _nanos(item.get("startTimeUnixNano")), _nanos(item.get("endTimeUnixNano"))
    status = _dict(item.get("status"))
    return Span(
        trace_id=_hex_id(item.get("traceId"), _TRACE_ID_BYTES) or "",
        span_id=span_id,
        parent_span_id=_hex_id(item.get("parentSpanId"), _SPAN_ID_BYTES),
        service_name=service if isinstance(service, str) else None,
        name=str(item.get("name") or ""),
        kind=_kind(item.get("kind")),
        start=_instant(start),
        end=_instant(end),
        duration=timedelta(microseconds=max(0, end - start) // 1000),
        is_error=_is_error_status(status.get("code")),
        status_message=_text(status.get("message")),
        attributes=_attributes(item.get("attributes")),
        resource_attributes=resource,
    )


def _kind(value: Any) -> str:
    """`SPAN_KIND_SERVER` (Tempo, jsonpb) or 2 (the OTLP JSON spec) as "server"."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        index = int(value)
        return _SPAN_KINDS[index] if 0 <= index < len(_SPAN_KINDS) else "unspecified"
    if isinstance(value, str) and value:
        return value.removeprefix("SPAN_KIND_").lower()
    return "unspecified"


def _is_error_status(code: Any) -> bool:
    """`STATUS_CODE_ERROR` (Tempo, jsonpb) or 2 (the OTLP JSON spec)."""
    if isinstance(code, str):
        return code == "STATUS_CODE_ERROR" or code == str(_STATUS_ERROR)
    return isinstance(code, int) and code == _STATUS_ERROR
