"""A local stand-in for Grafana Loki's query API: a contract test, since Loki cannot be installed
here (DESIGN.md, "Real components").

It answers `GET /loki/api/v1/query_range` as Loki's HTTP API reference documents it
(grafana/loki `docs/sources/reference/loki-http-api.md`, "Query logs within a range of time",
"Statistics", "Timestamps") and as Loki's encoder and request parser write and read it
(`pkg/util/marshal/query.go`, `pkg/loghttp/params.go`, `pkg/loghttp/query.go`,
`pkg/util/server/error.go`):

- Parameters: `query`, `start`/`end` (a nanosecond epoch; ten digits or fewer are seconds; a
  number with a dot is float seconds; or RFC 3339), `limit` (default 100, positive, at most
  `max_entries_limit_per_query` = 5000), `direction` (`forward`/`backward`, any case, default
  backward), `step` (a duration such as `1m`, or float seconds; default
  `max(floor((end - start) / 250 s), 1 s)`). Defaults: `end` now, `start` an hour before.
- Log queries return `{"status": "success", "data": {"resultType": "streams", "result":
  [{"stream": {labels}, "values": [["<ns epoch>", "<line>"], ...]}], "stats": {...}}}` with
  `start <= t < end`, at most `limit` entries over all streams (the newest for backward, the
  oldest for forward), each stream's values in that order.
- Structured metadata: without the `X-Loki-Response-Encoding-Flags: categorize-labels` request
  header it is folded into the stream labels (so lines with different metadata are different
  streams); with it, each value gets a third element `{"structuredMetadata": {...}}` (`{}` when
  there is none) and `data` gets `"encodingFlags": ["categorize-labels"]`.
- Metric queries return `resultType: "matrix"`, `{"metric": {labels}, "values": [[<seconds>,
  "<value>"], ...]}`: the timestamp a JSON number (milliseconds as a fraction), the value a
  string formatted like Go's `FormatFloat(v, 'f', -1, 64)`. Steps run `start, start + step, ...
  <= end`; a range `[d]` at `t` covers `(t - d, t]`; steps without lines have no point.
- Errors are `text/plain; charset=utf-8` with Loki's wording: `parse error at line 1, col N:
  ...` (400), `end timestamp must not be before or equal to start time` (400), `no org id` (401,
  when `auth_enabled` and no `X-Scope-OrgID`), `404 page not found` for other paths.

The LogQL it understands is the subset the client's tests need: a stream selector with `=`,
`!=`, `=~`, `!~` matchers, line filters `|=`, `!=`, `|~`, `!~`, the range aggregations
`count_over_time` and `rate`, and `sum` with `by`/`without`. Anything else is a 400 parse error
(positions are real; the wording after `syntax error:` is this fake's, not Loki's yacc's).

Tenants: with `auth_enabled=False` (Loki's default) every request is tenant `fake` and the
header is ignored; with `auth_enabled=True` each tenant sees only its own lines.

For tests of the client's error handling it can be told to answer the next requests (or all of
them) with a status and a plain-text body, or to hang without answering. It records every request
it received: path, query parameters and headers.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.postgres import free_port

NS_PER_SECOND = 1_000_000_000
DEFAULT_TENANT = "fake"
MAX_ENTRIES_LIMIT_PER_QUERY = 5000
CATEGORIZE_LABELS = "categorize-labels"
HANG_SECONDS = 10.0  # a hanging request gives up after this, or when the server closes

# Plain-text bodies Loki sends for these statuses.
DEFAULT_MESSAGES = {
    400: "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
    401: "no org id",
    429: "too many outstanding requests",
    500: "rpc error: code = Internal desc = failed to get chunks",
    502: "bad gateway",
    503: "service unavailable",
    504: (
        "request timed out, decrease the duration of the request or add more label matchers "
        "(prefer exact match over regex match) to reduce the amount of data processed"
    ),
}


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it. Header names are lower case."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """An answer instead of Loki's: `status` with a plain-text `body`, or no answer (`hang`)."""

    status: int = 500
    body: str | None = None
    hang: bool = False


@dataclass
class _Stream:
    labels: dict[str, str]
    entries: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)


class LokiRequestError(Exception):
    """A request Loki answers with a status and a plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeLoki:
    """A Loki query API on a free port of 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, auth_enabled: bool = False) -> None:
        self.auth_enabled = auth_enabled
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Received] = []
        self._streams: dict[str, dict[tuple[tuple[str, str], ...], _Stream]] = {}
        self._faults: list[Fault] = []
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> FakeLoki:
        """Listen and answer, on a background thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False  # do not wait for a hanging request
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        return self

    def close(self) -> None:
        """Stop answering; hanging requests end without an answer."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLoki:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- data -----------------------------------------------------------------------------

    def push(
        self,
        labels: dict[str, str],
        entries: Iterable[tuple[int, str] | tuple[int, str, dict[str, str]]],
        *,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        """Store `entries` (nanosecond epoch, line[, structured metadata]) in a stream."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            stream = self._streams.setdefault(tenant, {}).setdefault(key, _Stream(dict(labels)))
            for entry in entries:
                metadata = dict(entry[2]) if len(entry) == 3 else {}
                stream.entries.append((int(entry[0]), str(entry[1]), metadata))
            stream.entries.sort(key=lambda e: e[0])

    # --- faults ---------------------------------------------------------------------------

    def fail(self, status: int, message: str | None = None, *, times: int | None = 1) -> None:
        """Answer the next `times` requests (all of them when None) with `status` and a
        plain-text `message` (Loki's usual one for that status by default)."""
        body = message if message is not None else DEFAULT_MESSAGES.get(status, f"HTTP {status}")
        self._add_fault(Fault(status, body), times)

    def hang(self, *, times: int | None = 1) -> None:
        """Never answer the next `times` requests (all of them when None)."""
        self._add_fault(Fault(hang=True), times)

    def heal(self) -> None:
        """Answer as Loki again."""
        with self._lock:
            self._faults.clear()
            self._always = None

    def _add_fault(self, fault: Fault, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._always = fault
            else:
                self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            return self._always

    # --- requests -------------------------------------------------------------------------

    def received(self, path: str = "/loki/api/v1/query_range") -> list[Received]:
        """The requests received for `path`, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def answer(self, received: Received) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request, as Loki would answer it."""
        try:
            if received.path != "/loki/api/v1/query_range":
                raise LokiRequestError(404, "404 page not found")
            tenant = self._tenant(received.headers)
            body = self._query_range(received.params, received.headers, tenant)
        except LokiRequestError as exc:
            return exc.status, "text/plain; charset=utf-8", exc.message.encode()
        except Exception as exc:  # a bug of the fake: answer as Loki does on an internal error
            return 500, "text/plain; charset=utf-8", f"{type(exc).__name__}: {exc}".encode()
        return 200, "application/json; charset=UTF-8", json.dumps(body).encode()

    def _tenant(self, headers: dict[str, str]) -> str:
        if not self.auth_enabled:
            return DEFAULT_TENANT
        tenant = headers.get("x-scope-orgid", "")
        if not tenant:
            raise LokiRequestError(401, "no org id")
        return tenant

    def _query_range(
        self, params: dict[str, str], headers: dict[str, str], tenant: str
    ) -> dict[str, Any]:
        started = time.perf_counter()
        now = time.time_ns()
        start = parse_timestamp(params.get("start", ""), now - 3600 * NS_PER_SECOND)
        end = parse_timestamp(params.get("end", ""), now)
        if end < start:
            raise LokiRequestError(400, "end timestamp must not be before or equal to start time")
        limit = _parse_int(params.get("limit", ""), 100)
        if limit <= 0:
            raise LokiRequestError(400, "limit must be a positive value")
        direction = params.get("direction", "backward").lower() or "backward"
        if direction not in ("forward", "backward"):
            raise LokiRequestError(400, f"invalid direction '{params['direction']}'")
        step = _parse_step(params.get("step", ""), start, end)
        if step <= 0:
            raise LokiRequestError(
                400,
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        if (end - start) // step > 11000:
            raise LokiRequestError(
                400,
                "exceeded maximum resolution of 11,000 points per time series. "
                "Try increasing the value of the step parameter",
            )
        expr = parse_logql(params.get("query", ""))
        with self._lock:
            streams = [
                _Stream(dict(s.labels), list(s.entries))
                for s in self._streams.get(tenant, {}).values()
            ]
        if isinstance(expr, LogQuery):
            if limit > MAX_ENTRIES_LIMIT_PER_QUERY:
                raise LokiRequestError(
                    400,
                    "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                    f"({limit} > {MAX_ENTRIES_LIMIT_PER_QUERY})",
                )
            categorize = CATEGORIZE_LABELS in headers.get(
                "x-loki-response-encoding-flags", ""
            ).split(",")
            result, lines, size = _log_result(
                expr, streams, start, end, limit, direction, categorize
            )
            data: dict[str, Any] = {"resultType": "streams"}
            if categorize:
                data["encodingFlags"] = [CATEGORIZE_LABELS]
        else:
            result, lines, size = _matrix_result(expr, streams, start, end, step)
            data = {"resultType": "matrix"}
        data["result"] = result
        data["stats"] = _stats(lines, size, time.perf_counter() - started)
        return {"status": "success", "data": data}


def _handler(loki: FakeLoki) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            headers = {name.lower(): value for name, value in self.headers.items()}
            received = Received(self.command, url.path, params, headers)
            loki._record(received)
            fault = loki._next_fault()
            if fault is not None and fault.hang:
                loki._closing.wait(HANG_SECONDS)
                self.close_connection = True
                return
            if fault is not None:
                status, content_type = fault.status, "text/plain; charset=utf-8"
                payload = (fault.body or "").encode()
            else:
                status, content_type, payload = loki.answer(received)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if content_type.startswith("text/plain"):
                self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            # query_range also takes a form body; the client uses GET, so say it plainly.
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# --- parameters -------------------------------------------------------------------------------


def parse_timestamp(value: str, default: int) -> int:
    """A Loki timestamp parameter as a nanosecond epoch (`pkg/loghttp/params.go`)."""
    if value == "":
        return default
    if "." in value:
        try:
            seconds = Decimal(value)
        except ArithmeticError:
            seconds = None
        if seconds is not None:
            whole = int(seconds)
            millis = round((seconds - whole) * 1000)
            return whole * NS_PER_SECOND + millis * 1_000_000
    if re.fullmatch(r"-?\d+", value):
        number = int(value)
        return number * NS_PER_SECOND if len(value) <= 10 else number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LokiRequestError(
            400, f'strconv.ParseInt: parsing "{value}": invalid syntax'
        ) from None
    if moment.tzinfo is None:
        raise LokiRequestError(400, f'parsing time "{value}": missing time zone')
    return int(moment.timestamp()) * NS_PER_SECOND + moment.microsecond * 1000


def _parse_int(value: str, default: int) -> int:
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise LokiRequestError(400, f'strconv.Atoi: parsing "{value}": invalid syntax') from None


def _parse_step(value: str, start: int, end: int) -> int:
    if value == "":
        return max((end - start) // NS_PER_SECOND // 250, 1) * NS_PER_SECOND
    try:
        return int(Decimal(value) * NS_PER_SECOND)
    except (ArithmeticError, ValueError):
        pass
    nanos = parse_duration(value)
    if nanos is None:
        raise LokiRequestError(400, f'cannot parse "{value}" to a valid duration')
    return nanos


_UNITS = {
    "y": 365 * 86400 * NS_PER_SECOND,
    "w": 7 * 86400 * NS_PER_SECOND,
    "d": 86400 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "s": NS_PER_SECOND,
    "ms": 1_000_000,
}
_DURATION = re.compile(r"(?:\d+(?:ms|[ywdhms]))+")
_DURATION_PART = re.compile(r"(\d+)(ms|[ywdhms])")


def parse_duration(text: str) -> int | None:
    """A Prometheus duration (`1m`, `1h30m`, `500ms`) in nanoseconds; None when it is not one."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))


# --- LogQL (a subset) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class LineFilter:
    op: str  # |= != |~ !~
    value: str

    def keeps(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        found = re.search(self.value, line) is not None
        return found if self.op == "|~" else not found


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]

    def selects(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def keeps(self, line: str) -> bool:
        return all(f.keeps(line) for f in self.filters)


@dataclass(frozen=True)
class RangeAggregation:
    function: str  # count_over_time | rate
    query: LogQuery
    range_ns: int


@dataclass(frozen=True)
class Sum:
    inner: RangeAggregation | Sum
    grouping: str | None  # by | without | None (everything together)
    labels: tuple[str, ...]


MetricQuery = RangeAggregation | Sum


class _ParseError(Exception):
    def __init__(self, col: int, message: str) -> None:
        super().__init__(message)
        self.col = col
        self.message = message


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<op>\|=|\|~|!=|!~|=~|=|\|)
      | (?P<punct>[{}()\[\],])
      | (?P<duration>(?:\d+(?:ms|[ywdhms]))+)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    col: int  # 1-based column of the token's first character


def _tokens(query: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:  # only trailing spaces are left
            break
        kind = match.lastgroup or "other"
        tokens.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(query) + 1))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokens(query)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.token
        if token.kind != kind or (text is not None and token.text != text):
            self.fail()
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.token.kind == kind and (text is None or self.token.text == text)

    def fail(self) -> None:
        token = self.token
        shown = "$end" if token.kind == "end" else token.text
        raise _ParseError(token.col, f"syntax error: unexpected {shown}")

    def expression(self) -> LogQuery | MetricQuery:
        if self.at("punct", "{"):
            expr: LogQuery | MetricQuery = self.log_query()
        else:
            expr = self.metric_query()
        if not self.at("end"):
            self.fail()
        return expr

    def log_query(self) -> LogQuery:
        self.take("punct", "{")
        matchers = [self.matcher()]
        while self.at("punct", ","):
            self.take("punct", ",")
            matchers.append(self.matcher())
        self.take("punct", "}")
        filters = []
        while self.token.kind == "op" and self.token.text in ("|=", "!=", "|~", "!~"):
            op = self.take("op").text
            filters.append(LineFilter(op, self.pattern() if "~" in op else self.string()))
        return LogQuery(tuple(matchers), tuple(filters))

    def matcher(self) -> Matcher:
        name = self.take("ident").text
        op = self.take("op").text
        if op not in ("=", "!=", "=~", "!~"):
            self.index -= 1
            self.fail()
        return Matcher(name, op, self.pattern() if "~" in op else self.string())

    def pattern(self) -> str:
        col = self.token.col
        text = self.string()
        try:
            re.compile(text)
        except re.error as exc:
            raise _ParseError(col, f"error parsing regexp: {exc}") from None
        return text

    def string(self) -> str:
        text = self.take("string").text
        if text.startswith("`"):
            return text[1:-1]
        return str(json.loads(text))

    def metric_query(self) -> MetricQuery:
        name = self.take("ident")
        if name.text == "sum":
            grouping, labels = self.grouping()
            self.take("punct", "(")
            inner = self.metric_query()
            self.take("punct", ")")
            if grouping is None:
                grouping, labels = self.grouping()
            return Sum(inner, grouping, labels)
        if name.text in ("count_over_time", "rate"):
            self.take("punct", "(")
            query = self.log_query()
            self.take("punct", "[")
            duration = self.take("duration")
            self.take("punct", "]")
            self.take("punct", ")")
            return RangeAggregation(name.text, query, parse_duration(duration.text) or 0)
        self.index -= 1
        self.fail()
        raise AssertionError("unreachable")  # pragma: no cover

    def grouping(self) -> tuple[str | None, tuple[str, ...]]:
        if not (self.at("ident", "by") or self.at("ident", "without")):
            return None, ()
        grouping = self.take("ident").text
        self.take("punct", "(")
        labels = [self.take("ident").text]
        while self.at("punct", ","):
            self.take("punct", ",")
            labels.append(self.take("ident").text)
        self.take("punct", ")")
        return grouping, tuple(labels)


def parse_logql(query: str) -> LogQuery | MetricQuery:
    """The query's syntax tree, or a 400 with Loki's `parse error` prefix."""
    try:
        expr = _Parser(query).expression()
    except _ParseError as exc:
        raise LokiRequestError(
            400, f"parse error at line 1, col {exc.col}: {exc.message}"
        ) from None
    except ValueError as exc:  # a bad string literal or regular expression
        raise LokiRequestError(400, f"parse error : {exc}") from None
    selector = expr if isinstance(expr, LogQuery) else _selector(expr)
    if not any(m.op in ("=", "=~") and not m.matches({}) for m in selector.matchers):
        raise LokiRequestError(
            400,
            "parse error : queries require at least one regexp or equality matcher that does "
            'not have an empty-compatible value. For instance, app=~".*" does not meet this '
            'requirement, but app=~".+" will',
        )
    return expr


def _selector(expr: MetricQuery) -> LogQuery:
    while isinstance(expr, Sum):
        expr = expr.inner
    return expr.query


# --- evaluation -------------------------------------------------------------------------------


def _log_result(
    query: LogQuery,
    streams: list[_Stream],
    start: int,
    end: int,
    limit: int,
    direction: str,
    categorize: bool,
) -> tuple[list[dict[str, Any]], int, int]:
    """The streams result, and how many lines and bytes were looked at."""
    found: list[tuple[int, str, dict[str, str], dict[str, str]]] = []
    processed = size = 0
    for stream in streams:
        if not query.selects(stream.labels):
            continue
        for ts, line, metadata in stream.entries:
            if not start <= ts < end:
                continue
            processed += 1
            size += len(line.encode())
            if query.keeps(line):
                found.append((ts, line, stream.labels, metadata))
    backward = direction == "backward"
    found.sort(key=lambda e: e[0], reverse=backward)
    found = found[:limit]
    grouped: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for ts, line, labels, metadata in found:
        shown = labels if categorize else {**metadata, **labels}
        key = tuple(sorted(shown.items()))
        value: list[Any] = [str(ts), line]
        if categorize:
            value.append({"structuredMetadata": metadata} if metadata else {})
        grouped.setdefault(key, {"stream": dict(sorted(shown.items())), "values": []})
        grouped[key]["values"].append(value)
    return list(grouped.values()), processed, size


def _matrix_result(
    expr: MetricQuery, streams: list[_Stream], start: int, end: int, step: int
) -> tuple[list[dict[str, Any]], int, int]:
    """The matrix result, and how many lines and bytes were looked at."""
    steps = list(range(start, end + 1, step))
    series, processed, size = _evaluate(expr, streams, steps)
    result = [
        {
            "metric": dict(sorted(labels)),
            "values": [[_seconds(t), format_value(v)] for t, v in sorted(points.items())],
        }
        for labels, points in sorted(series.items())
        if points
    ]
    return result, processed, size


Points = dict[int, float]
LabelKey = tuple[tuple[str, str], ...]


def _evaluate(
    expr: MetricQuery, streams: list[_Stream], steps: list[int]
) -> tuple[dict[LabelKey, Points], int, int]:
    if isinstance(expr, RangeAggregation):
        return _range_aggregation(expr, streams, steps)
    inner, processed, size = _evaluate(expr.inner, streams, steps)
    summed: dict[LabelKey, Points] = {}
    for labels, points in inner.items():
        if expr.grouping == "by":
            kept = tuple((k, v) for k, v in labels if k in expr.labels)
        elif expr.grouping == "without":
            kept = tuple((k, v) for k, v in labels if k not in expr.labels)
        else:
            kept = ()
        target = summed.setdefault(kept, {})
        for t, value in points.items():
            target[t] = target.get(t, 0.0) + value
    return summed, processed, size


def _range_aggregation(
    expr: RangeAggregation, streams: list[_Stream], steps: list[int]
) -> tuple[dict[LabelKey, Points], int, int]:
    series: dict[LabelKey, Points] = {}
    processed = size = 0
    first, last = (steps[0] - expr.range_ns, steps[-1]) if steps else (0, -1)
    for stream in streams:
        if not expr.query.selects(stream.labels):
            continue
        kept = []
        for ts, line, _metadata in stream.entries:
            if first < ts <= last:
                processed += 1
                size += len(line.encode())
                if expr.query.keeps(line):
                    kept.append(ts)
        points: Points = {}
        for t in steps:
            count = sum(1 for ts in kept if t - expr.range_ns < ts <= t)
            if count:
                seconds = expr.range_ns / NS_PER_SECOND
                points[t] = float(count) if expr.function == "count_over_time" else count / seconds
        if points:
            series[tuple(sorted(stream.labels.items()))] = points
    return series, processed, size


def _seconds(ns: int) -> int | float:
    """A Prometheus model time as Loki writes it: seconds, milliseconds as a fraction."""
    millis = ns // 1_000_000
    return millis // 1000 if millis % 1000 == 0 else millis / 1000


def format_value(value: float) -> str:
    """Go's `strconv.FormatFloat(v, 'f', -1, 64)`, as Prometheus' `SampleValue.String()`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer():
        return str(int(value))
    return f"{Decimal(repr(value)):f}"


def _stats(lines: int, size: int, seconds: float) -> dict[str, Any]:
    """The statistics object of the documented shape ("Statistics")."""

    def per_second(count: int) -> int:
        return int(count / seconds) if seconds > 0 else 0

    return {
        "ingester": {
            "compressedBytes": 0,
            "decompressedBytes": 0,
            "decompressedLines": 0,
            "headChunkBytes": size,
            "headChunkLines": lines,
            "totalBatches": 1 if lines else 0,
            "totalChunksMatched": 1 if lines else 0,
            "totalDuplicates": 0,
            "totalLinesSent": lines,
            "totalReached": 1,
        },
        "store": {
            "compressedBytes": 0,
            "decompressedBytes": 0,
            "decompressedLines": 0,
            "chunksDownloadTime": 0,
            "totalChunksRef": 0,
            "totalChunksDownloaded": 0,
            "totalDuplicates": 0,
        },
        "summary": {
            "bytesProcessedPerSecond": per_second(size),
            "execTime": seconds,
            "linesProcessedPerSecond": per_second(lines),
            "queueTime": 0,
            "totalBytesProcessed": size,
            "totalLinesProcessed": lines,
        },
    }
