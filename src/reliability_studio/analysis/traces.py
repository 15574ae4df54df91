"""Traces as evidence: where errors originate, which operations got slower, which trace to open.

Pure functions over whole traces (`telemetry.tempo.Trace`) that the gatherer fetched: the
errors of a service's traces are summarised (failing operations, the service where the error
originates, example trace ids), its spans and those of its downstream calls are compared with a
baseline window (p95 per operation), and both become `trace_errors` findings from Tempo.

The origin of an error is the deepest error span whose own children have no error: a checkout
request that fails because payments failed because its database call failed has three error
spans, and only the last one explains the other two.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reliability_studio.analysis.findings import (
    DOWNSTREAM_PREFIX,
    ERROR_SURGE,
    LATENCY,
    Finding,
)
from reliability_studio.telemetry.tempo import Span, Trace

MAX_EXAMPLES = 5
"""Example trace ids kept: enough to open a few, few enough to read."""

MAX_OPERATIONS = 10
"""Failing or slow operations listed in a finding's figures."""

MIN_ORIGIN_SHARE = 0.25
"""A service other than the caller gets a `downstream:` signal when at least this share of the
failing traces originate there: a few stray errors elsewhere do not make it the cause."""

MIN_BASELINE = timedelta(milliseconds=1)
"""A baseline p95 below this counts as this much, so that a microsecond span doing a little
more work is not reported as many times slower."""

TRACE_ID_PLACEHOLDER = "{trace_id}"

_PEER_ATTRIBUTES = ("peer.service", "db.system")


# --- where an error originates -----------------------------------------------------------------


def error_origin(trace: Trace) -> Span | None:
    """The span where the trace's error originates, or None when no span failed.

    That is the error span deepest along parent links among those whose own children have no
    error; ties go to the earliest. Errors that propagate up leave error spans on every caller,
    so the deepest one that did not inherit its error from a child is where it began.
    """
    errors = trace.error_spans()
    if not errors:
        return None
    failing_parents = {span.parent_span_id for span in errors if span.parent_span_id}
    leaves = [span for span in errors if span.span_id not in failing_parents]
    if not leaves:  # only in a trace whose parent links loop: fall back to any error span
        leaves = errors
    depths = _depths(trace)
    return min(leaves, key=lambda span: (-depths.get(span.span_id, 0), span.start, span.span_id))


def origin_service(trace: Trace, span: Span) -> str | None:
    """The service that `span`'s error comes from.

    Its own `service.name`, except for a client (or producer) span with no children in the
    trace: the callee is then not instrumented (a database, a third-party API), and the span's
    `peer.service` or `db.system` attribute names it, as OpenTelemetry's conventions say.
    """
    if span.kind in ("client", "producer") and not trace.children_of(span.span_id):
        for key in _PEER_ATTRIBUTES:
            peer = span.attributes.get(key)
            if isinstance(peer, str) and peer:
                return peer
    return span.service_name


def _depths(trace: Trace) -> dict[str, int]:
    """Each span's number of ancestors present in the trace (a missing parent ends the chain)."""
    parents = {span.span_id: span.parent_span_id for span in trace.spans}
    depths: dict[str, int] = {}
    for span in trace.spans:
        depth, current, seen = 0, parents.get(span.span_id), {span.span_id}
        while current is not None and current in parents and current not in seen:
            seen.add(current)
            depth += 1
            current = parents[current]
        depths[span.span_id] = depth
    return depths


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceErrors:
    """What the failing traces of one service say.

    `top_operations` counts error spans per (service, operation), most first; `origins` counts
    failing traces per origin service, and `origin_operations` per (service, operation) of the
    origin span, most first; `trace_ids` are examples of failing traces, earliest error first.
    """

    service: str
    traces: int
    error_traces: int
    top_operations: list[tuple[str, str, int]]
    origins: dict[str, int]
    trace_ids: list[str]
    first_error_at: datetime | None
    origin_operations: list[tuple[str, str, int]]

    @property
    def main_origin(self) -> str | None:
        """The service most failing traces originate in."""
        return next(iter(self.origins), None)


def summarize_errors(service: str, traces: Sequence[Trace]) -> TraceErrors:
    """The errors of `service`'s traces: how many failed, what failed, where it began."""
    operations: Counter[tuple[str, str]] = Counter()
    origins: Counter[str] = Counter()
    origin_operations: Counter[tuple[str, str]] = Counter()
    failing: list[tuple[datetime, str]] = []
    for trace in traces:
        errors = trace.error_spans()
        if not errors:
            continue
        for span in errors:
            operations[(span.service_name or "unknown", span.name)] += 1
        failing.append((min(span.start for span in errors), trace.trace_id))
        origin = error_origin(trace)
        if origin is not None:
            where = origin_service(trace, origin) or "unknown"
            origins[where] += 1
            origin_operations[(where, origin.name)] += 1
    failing.sort()
    return TraceErrors(
        service=service,
        traces=len(traces),
        error_traces=len(failing),
        top_operations=_ranked(operations),
        origins=dict(sorted(origins.items(), key=lambda item: (-item[1], item[0]))),
        trace_ids=[trace_id for _, trace_id in failing[:MAX_EXAMPLES]],
        first_error_at=failing[0][0] if failing else None,
        origin_operations=_ranked(origin_operations),
    )


def _ranked(counts: Counter[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """Most first, then by name, so that equal counts come out in a stable order."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(service, operation, count) for (service, operation), count in ordered]


# --- latency -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlowOperation:
    """One (service, operation) whose p95 duration rose against the baseline.

    `first_slow_at` is the start of the earliest incident span slower than `min_ratio` times the
    baseline p95; `example_trace_id` is the trace of the slowest span, the one worth opening.
    """

    service: str
    operation: str
    p95: timedelta
    baseline_p95: timedelta
    ratio: float
    samples: int
    baseline_samples: int
    first_slow_at: datetime | None
    example_trace_id: str


def slow_operations(
    incident: Sequence[Trace],
    baseline: Sequence[Trace],
    service: str,
    *,
    min_ratio: float = 2.0,
    min_samples: int = 5,
) -> list[SlowOperation]:
    """The operations of `service`, and of the calls it makes downstream, whose p95 duration in
    `incident` is at least `min_ratio` times their p95 in `baseline`, slowest ratio first.

    Both windows need `min_samples` spans of an operation: a p95 of three spans is noise. The
    p95 is the nearest-rank one (a duration that was actually observed).
    """
    now = _durations(incident, service)
    before = _durations(baseline, service)
    slow: list[SlowOperation] = []
    for key, spans in now.items():
        reference = before.get(key, [])
        if len(spans) < min_samples or len(reference) < min_samples:
            continue
        p95 = _p95([span.duration for span in spans])
        baseline_p95 = _p95([span.duration for span in reference])
        ratio = p95 / max(baseline_p95, MIN_BASELINE)
        if ratio < min_ratio:
            continue
        threshold = max(baseline_p95, MIN_BASELINE) * min_ratio
        slow_starts = [span.start for span in spans if span.duration >= threshold]
        slowest = max(spans, key=lambda span: (span.duration, span.trace_id))
        slow.append(
            SlowOperation(
                service=key[0],
                operation=key[1],
                p95=p95,
                baseline_p95=baseline_p95,
                ratio=ratio,
                samples=len(spans),
                baseline_samples=len(reference),
                first_slow_at=min(slow_starts, default=None),
                example_trace_id=slowest.trace_id,
            )
        )
    return sorted(slow, key=lambda op: (-op.ratio, op.service, op.operation))


def _durations(traces: Iterable[Trace], service: str) -> dict[tuple[str, str], list[Span]]:
    """The spans of `service` and their descendants (its downstream calls), by operation."""
    spans: dict[tuple[str, str], list[Span]] = {}
    for trace in traces:
        for span in _service_subtree(trace, service):
            spans.setdefault((span.service_name or "unknown", span.name), []).append(span)
    return spans


def _service_subtree(trace: Trace, service: str) -> list[Span]:
    children: dict[str, list[Span]] = {}
    for span in trace.spans:
        if span.parent_span_id:
            children.setdefault(span.parent_span_id, []).append(span)
    found: dict[str, Span] = {}
    pending = [span for span in trace.spans if span.service_name == service]
    while pending:
        span = pending.pop()
        if span.span_id in found:
            continue
        found[span.span_id] = span
        pending.extend(children.get(span.span_id, []))
    return [span for span in trace.spans if span.span_id in found]


def _p95(durations: Sequence[timedelta]) -> timedelta:
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- findings ----------------------------------------------------------------------------------


def trace_findings(
    service: str,
    errors: TraceErrors,
    slow: Sequence[SlowOperation],
    *,
    query: str,
    link_template: str | None,
) -> list[Finding]:
    """Tempo's evidence about `service` as findings: one for its failing traces (if any), one for
    its slow operations (if any). Both are `trace_errors`, the one timeline kind of Tempo.

    Errors signal ERROR_SURGE, plus `downstream:<service>` for each other service where at least
    MIN_ORIGIN_SHARE of the failing traces originate. Slow operations signal LATENCY.
    `link_template` is filled with an example trace id at `{trace_id}` (by replacement, not
    `str.format`, as Grafana links carry JSON braces of their own).

    Scores: errors 0.5 + 0.4 x the share of failing traces (at most 0.4 with fewer than three
    failing traces, which prove little); latency 0.3 + 0.2 x log2 of the worst ratio, at most 0.9
    (2x gives 0.5, 4x 0.7, 8x 0.9).
    """
    findings: list[Finding] = []
    if errors.error_traces:
        findings.append(_error_finding(service, errors, query, link_template))
    if slow:
        findings.append(_latency_finding(service, slow, query, link_template))
    return findings


def _error_finding(
    service: str, errors: TraceErrors, query: str, link_template: str | None
) -> Finding:
    signals = {ERROR_SURGE}
    for origin, count in errors.origins.items():
        if origin != service and count >= MIN_ORIGIN_SHARE * errors.error_traces:
            signals.add(DOWNSTREAM_PREFIX + origin)
    title = f"{errors.error_traces} of {errors.traces} traces of {service} failed"
    component = None
    if errors.origin_operations:
        origin, operation, _ = errors.origin_operations[0]
        where = f"{service} itself" if origin == service else origin
        title += f"; errors originate in {where} ({operation})"
        component = operation
    share = errors.error_traces / errors.traces if errors.traces else 1.0
    score = 0.5 + 0.4 * min(1.0, share)
    if errors.error_traces < 3:
        score = min(score, 0.4)
    figures: dict[str, Any] = {
        "traces": errors.traces,
        "error_traces": errors.error_traces,
        "error_ratio": round(share, 4),
        "top_operations": [
            {"service": s, "operation": o, "errors": n}
            for s, o, n in errors.top_operations[:MAX_OPERATIONS]
        ],
        "origins": dict(errors.origins),
        "origin_operations": [
            {"service": s, "operation": o, "traces": n}
            for s, o, n in errors.origin_operations[:MAX_OPERATIONS]
        ],
        "trace_ids": list(errors.trace_ids),
    }
    return Finding(
        kind="trace_errors",
        source="tempo",
        service=service,
        title=title,
        score=round(score, 3),
        component=component,
        started_at=errors.first_error_at,
        query=query,
        link=_link(link_template, errors.trace_ids[0] if errors.trace_ids else None),
        figures=figures,
        signals=frozenset(signals),
    )


def _latency_finding(
    service: str, slow: Sequence[SlowOperation], query: str, link_template: str | None
) -> Finding:
    worst = max(slow, key=lambda op: op.ratio)
    count = len(slow)
    title = (
        f"{count} operation{'s' if count != 1 else ''} of {service} and its calls slower than "
        f"the baseline; {_operation_label(worst, service)} p95 {_duration(worst.p95)} vs "
        f"{_duration(worst.baseline_p95)} ({worst.ratio:.1f}x)"
    )
    score = min(0.9, 0.3 + 0.2 * math.log2(max(worst.ratio, 1.0)))
    starts = [op.first_slow_at for op in slow if op.first_slow_at is not None]
    figures: dict[str, Any] = {
        "operations": [
            {
                "service": op.service,
                "operation": op.operation,
                "p95_ms": _ms(op.p95),
                "baseline_p95_ms": _ms(op.baseline_p95),
                "ratio": round(op.ratio, 2),
                "samples": op.samples,
                "baseline_samples": op.baseline_samples,
                "trace_id": op.example_trace_id,
            }
            for op in list(slow)[:MAX_OPERATIONS]
        ],
        "trace_ids": list(dict.fromkeys(op.example_trace_id for op in slow))[:MAX_EXAMPLES],
    }
    return Finding(
        kind="trace_errors",
        source="tempo",
        service=service,
        title=title,
        score=round(max(0.0, score), 3),
        component=worst.operation,
        started_at=min(starts, default=None),
        query=query,
        link=_link(link_template, worst.example_trace_id),
        figures=figures,
        signals=frozenset({LATENCY}),
    )


def _operation_label(op: SlowOperation, service: str) -> str:
    return op.operation if op.service == service else f"{op.service} {op.operation}"


def _link(template: str | None, trace_id: str | None) -> str | None:
    if not template or trace_id is None:
        return None
    return template.replace(TRACE_ID_PLACEHOLDER, trace_id)


def _ms(value: timedelta) -> float:
    return round(value / timedelta(milliseconds=1), 3)


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds >= 1:
        return f"{seconds:.1f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1_000_000:.0f} us"
