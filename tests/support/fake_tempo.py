"""A stand-in for Grafana Tempo's query HTTP API, on 127.0.0.1, for contract tests.

Tempo cannot be installed here (DESIGN.md, "Real components"), so the Tempo client is tested
against this server instead. It is a contract test: the server answers exactly as Tempo's
documented HTTP API does, and nothing more. Sources:

- grafana/tempo `docs/sources/tempo/api_docs/_index.md` (Search, Query) and
  `api_docs/pushing-spans-with-http.md` (a real `/api/search` and trace answer, verbatim);
- Tempo's Go code for what the docs leave out: `pkg/api/http.go` (`ParseSearchRequest`: `start`
  and `end` are whole seconds parsed as 32-bit integers, `end` must be after `start`, `limit`
  and `spss` positive, the 400 messages), `pkg/util` (`HexStringToTraceID`: a trace id is up
  to 32 hex digits, left-padded with zeros; `TraceIDToHexString`: search answers drop leading
  zeros), `modules/frontend/combiner` (answers are written by gogo `jsonpb`, which leaves out
  zero values and writes 64-bit numbers as strings and enums by name; errors are the plain
  text of the error with its status; a missing trace is a 404);
- grafana/tempo#5437: `/api/traces/<id>` writes ids in base64 up to Tempo 2.8 (hex after).

What it answers:

- `GET /api/search?q=&start=&end=&limit=&spss=` for the TraceQL `{}`,
  `{ resource.service.name = "x" }` and `{ resource.service.name = "x" && status = error }`,
  filtering the traces it holds. Any other query is answered 400 `invalid TraceQL query: ...`
  (as Tempo answers a query it cannot parse), so do not send it valid TraceQL of another form.
  As Tempo does: newest first, `durationMs` left out under 1 ms, `rootTraceName` left out and
  `rootServiceName` "<root span not yet received>" without a root span, no `traces` at all when
  nothing matched; each trace has its spans that matched in `spanSets` (and the deprecated
  `spanSet`), at most `spss` (default 3) of them, with the attributes the query named.
- `GET /api/traces/<id>`: the trace as OTLP JSON, one resource (batch) per service, under
  `batches` (or `resourceSpans`), with `scopeSpans` (or `instrumentationLibrarySpans`), ids in
  base64 (or hex), enums by name (or number): see `FakeTempo`'s arguments.
- Anything else: 404 `404 page not found` (Go's mux).

Every request is recorded (path, query parameters, headers). `answer_with`, `hang` and
`trickle` make the next requests (or all) fail; `multitenant=True` refuses a request without
`X-Scope-OrgID` with 401 `no org id`, as Tempo does with `multitenancy_enabled`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.support.postgres import free_port

SpanKind = Literal[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
]
KINDS: tuple[SpanKind, ...] = (
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
)
ROOT_SPAN_NOT_YET_RECEIVED = "<root span not yet received>"
DEFAULT_SPSS = 3
DEFAULT_LIMIT = 20
HANG_SECONDS = 10.0

_QUERY = re.compile(
    r'^\{\s*(?:resource\.service\.name\s*=\s*"(?P<service>[^"]*)"'
    r"(?P<errors>\s*&&\s*status\s*=\s*error)?\s*)?\}$"
)


@dataclass(frozen=True)
class FakeSpan:
    """One span. Ids are hex; times are unix nanoseconds."""

    span_id: str  # 16 hex digits
    name: str
    service: str
    start_ns: int
    end_ns: int
    parent_id: str | None = None
    kind: SpanKind = "SPAN_KIND_SERVER"
    error: bool = False
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)  # besides service.name


@dataclass(frozen=True)
class FakeTrace:
    """A trace: its id (32 hex digits) and spans."""

    trace_id: str
    spans: Sequence[FakeSpan]

    @property
    def start_ns(self) -> int:
        return min(span.start_ns for span in self.spans)

    @property
    def end_ns(self) -> int:
        return max(span.end_ns for span in self.spans)

    @property
    def root(self) -> FakeSpan | None:
        return next((span for span in self.spans if span.parent_id is None), None)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it. Header names are lower case."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class _Fault:
    kind: Literal["answer", "hang", "trickle"]
    status: int = 500
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"


class FakeTempo:
    """Tempo's query API on a free port of 127.0.0.1, holding `traces`.

    `top_key`, `scope_key`, `ids` and `enums` choose how `/api/traces/<id>` writes OTLP JSON:
    the defaults are Tempo 2.x up to 2.8 (`batches`, `scopeSpans`, base64 ids, enum names).
    """

    def __init__(
        self,
        traces: Sequence[FakeTrace] = (),
        *,
        top_key: Literal["batches", "resourceSpans"] = "batches",
        scope_key: Literal["scopeSpans", "instrumentationLibrarySpans"] = "scopeSpans",
        ids: Literal["base64", "hex"] = "base64",
        enums: Literal["names", "numbers"] = "names",
        multitenant: bool = False,
    ) -> None:
        self.traces: dict[str, FakeTrace] = {}
        self.top_key = top_key
        self.scope_key = scope_key
        self.ids = ids
        self.enums = enums
        self.multitenant = multitenant
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._persistent: _Fault | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.add(*traces)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # do not wait for a request that hangs
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    # --- the test's side ------------------------------------------------------------------

    def add(self, *traces: FakeTrace) -> None:
        """Hold these traces (replacing any with the same id)."""
        with self._lock:
            for trace in traces:
                self.traces[_pad(trace.trace_id.lower(), 32)] = trace

    def answer_with(
        self,
        status: int,
        body: str = "",
        *,
        content_type: str = "text/plain; charset=utf-8",
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests (all when None) with `status` and `body`."""
        self._script(_Fault("answer", status, body, content_type), times)

    def hang(self, *, times: int | None = 1) -> None:
        """Accept the next `times` requests (all when None) and never answer them."""
        self._script(_Fault("hang"), times)

    def trickle(self, *, times: int | None = 1) -> None:
        """Answer the next requests 200 with a body that comes one byte every 0.1 s."""
        self._script(_Fault("trickle"), times)

    def heal(self) -> None:
        """Forget every scripted failure."""
        with self._lock:
            self._faults.clear()
            self._persistent = None

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTempo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _script(self, fault: _Fault, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._persistent = fault
            else:
                self._faults.extend([fault] * times)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            return self._persistent

    # --- Tempo's side ---------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tempo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {name.lower(): value for name, value in self.headers.items()},
                )
                with tempo._lock:
                    tempo.requests.append(request)
                fault = tempo._next_fault()
                if fault is not None and fault.kind == "hang":
                    tempo._closing.wait(HANG_SECONDS)
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "trickle":
                    self._trickle()
                    return
                if fault is not None:
                    status, body, content_type = fault.status, fault.body, fault.content_type
                else:
                    status, body, content_type = tempo._answer(request)
                self._send(status, body, content_type)

            def _send(self, status: int, body: str, content_type: str) -> None:
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _trickle(self) -> None:
                payload = b'{"traces": []}' + b" " * 200
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    for byte in payload:
                        if tempo._closing.is_set():
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:  # the client gave up
                    pass
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, request: RecordedRequest) -> tuple[int, str, str]:
        """(status, body, content type) as Tempo would answer `request`."""
        if self.multitenant and not request.headers.get("x-scope-orgid"):
            return 401, "no org id", "text/plain; charset=utf-8"
        if request.path == "/api/search":
            return self._search(request)
        if request.path.startswith("/api/traces/"):
            return self._trace(request.path.removeprefix("/api/traces/"))
        return 404, "404 page not found\n", "text/plain; charset=utf-8"

    def _search(self, request: RecordedRequest) -> tuple[int, str, str]:
        try:
            start = _int32(request.param("start"), "start")
            end = _int32(request.param("end"), "end")
            limit = _positive(request.param("limit"), "limit", DEFAULT_LIMIT)
            spss = _positive(request.param("spss"), "spss", DEFAULT_SPSS)
        except ValueError as exc:
            return 400, str(exc), "text/plain; charset=utf-8"
        if (start or end) and end <= start:
            message = f"http parameter start must be before end. received start={start} end={end}"
            return 400, message, "text/plain; charset=utf-8"
        q = request.param("q") or "{}"
        match = _QUERY.match(q.strip())
        if match is None:
            message = (
                f"invalid TraceQL query: parse error: {q!r} is not a query this fake Tempo "
                'understands ({}, { resource.service.name = "x" } and '
                '{ resource.service.name = "x" && status = error })'
            )
            return 400, message, "text/plain; charset=utf-8"
        service, errors_only = match.group("service"), match.group("errors") is not None

        def selected(span: FakeSpan) -> bool:
            if service is not None and span.service != service:
                return False
            return span.error or not errors_only

        found = []
        with self._lock:
            traces = list(self.traces.values())
        for trace in traces:
            if (start or end) and not (
                trace.start_ns <= end * 1_000_000_000 and trace.end_ns >= start * 1_000_000_000
            ):
                continue
            spans = sorted((s for s in trace.spans if selected(s)), key=lambda s: s.start_ns)
            if spans:
                found.append(_summary(trace, spans, spss, service, errors_only))
        found.sort(key=lambda item: int(item["startTimeUnixNano"]), reverse=True)
        answer: dict[str, Any] = {}
        if found:  # jsonpb leaves out an empty list
            answer["traces"] = found[:limit]
        answer["metrics"] = {"inspectedBytes": "1024", "completedJobs": 1, "totalJobs": 1}
        return 200, json.dumps(answer), "application/json"

    def _trace(self, raw_id: str) -> tuple[int, str, str]:
        for position, char in enumerate(raw_id, start=1):
            if char not in "0123456789abcdefABCDEF":
                message = (
                    "trace IDs can only contain hex characters: "
                    f"invalid character '{char}' at position {position}"
                )
                return 400, message, "text/plain; charset=utf-8"
        if len(raw_id) > 32:
            return 400, "trace IDs can't be larger than 128 bits", "text/plain; charset=utf-8"
        with self._lock:
            trace = self.traces.get(_pad(raw_id.lower(), 32))
        if trace is None:
            return 404, "", "text/plain; charset=utf-8"
        return 200, json.dumps(self._otlp(trace)), "application/json"

    def _otlp(self, trace: FakeTrace) -> dict[str, Any]:
        """The trace as Tempo's jsonpb writes it: zero values left out."""
        by_service: dict[str, list[FakeSpan]] = {}
        for span in trace.spans:
            by_service.setdefault(span.service, []).append(span)
        scope_name = "scope" if self.scope_key == "scopeSpans" else "instrumentationLibrary"
        batches = []
        for service, spans in by_service.items():
            resource = {"service.name": service}
            for span in spans:
                resource.update(span.resource)
            batches.append(
                {
                    "resource": {"attributes": _key_values(resource)},
                    self.scope_key: [
                        {
                            scope_name: {"name": "fake-instrumentation", "version": "1.0.0"},
                            "spans": [self._otlp_span(trace, span) for span in spans],
                        }
                    ],
                }
            )
        return {self.top_key: batches}

    def _otlp_span(self, trace: FakeTrace, span: FakeSpan) -> dict[str, Any]:
        item: dict[str, Any] = {
            "traceId": self._id(trace.trace_id, 16),
            "spanId": self._id(span.span_id, 8),
        }
        if span.parent_id is not None:
            item["parentSpanId"] = self._id(span.parent_id, 8)
        item["name"] = span.name
        if span.kind != "SPAN_KIND_UNSPECIFIED":
            item["kind"] = span.kind if self.enums == "names" else KINDS.index(span.kind)
        item["startTimeUnixNano"] = str(span.start_ns)
        item["endTimeUnixNano"] = str(span.end_ns)
        if span.attributes:
            item["attributes"] = _key_values(span.attributes)
        status: dict[str, Any] = {}
        if span.error:
            status["code"] = "STATUS_CODE_ERROR" if self.enums == "names" else 2
        if span.status_message:
            status["message"] = span.status_message
        item["status"] = status
        return item

    def _id(self, hex_id: str, size: int) -> str:
        padded = _pad(hex_id.lower(), 2 * size)
        if self.ids == "hex":
            return padded
        return base64.b64encode(bytes.fromhex(padded)).decode()


def _summary(
    trace: FakeTrace, spans: list[FakeSpan], spss: int, service: str | None, errors_only: bool
) -> dict[str, Any]:
    """A search result as `TraceSearchMetadata` in jsonpb: leading zeros of the id dropped."""
    root = trace.root
    item: dict[str, Any] = {
        "traceID": trace.trace_id.lower().lstrip("0"),
        "rootServiceName": root.service if root is not None else ROOT_SPAN_NOT_YET_RECEIVED,
    }
    if root is not None:
        item["rootTraceName"] = root.name
    item["startTimeUnixNano"] = str(trace.start_ns)
    duration_ms = (trace.end_ns - trace.start_ns) // 1_000_000
    if duration_ms:
        item["durationMs"] = duration_ms
    matched = []
    for span in spans[:spss]:
        attributes: dict[str, Any] = {}
        if service is not None:
            attributes["service.name"] = span.service
        if errors_only:
            attributes["status"] = "error"
        entry: dict[str, Any] = {
            "spanID": _pad(span.span_id.lower(), 16),
            "name": span.name,
            "startTimeUnixNano": str(span.start_ns),
            "durationNanos": str(span.end_ns - span.start_ns),
        }
        if attributes:
            entry["attributes"] = _key_values(attributes)
        matched.append(entry)
    span_set = {"spans": matched, "matched": len(spans)}
    item["spanSet"] = span_set
    item["spanSets"] = [span_set]
    return item


def _key_values(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in values.items()]


def _any_value(value: Any) -> dict[str, Any]:
    """An OTLP `AnyValue` as jsonpb writes it (int64 as a string, bytes as base64)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _key_values(value)}}
    return {"stringValue": str(value)}


def _pad(hex_id: str, digits: int) -> str:
    return hex_id.rjust(digits, "0")


def _int32(value: str | None, name: str) -> int:
    """Go's `strconv.ParseInt(s, 10, 32)`, with Tempo's message; absent is 0."""
    if value is None:
        return 0
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError(f'invalid {name}: strconv.ParseInt: parsing "{value}": invalid syntax')
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise ValueError(f'invalid {name}: strconv.ParseInt: parsing "{value}": value out of range')
    return number


def _positive(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError(f'invalid {name}: strconv.Atoi: parsing "{value}": invalid syntax')
    if int(value) <= 0:
        raise ValueError(f"invalid {name}: must be a positive number")
    return int(value)
