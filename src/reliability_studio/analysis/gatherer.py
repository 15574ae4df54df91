"""Gathering evidence for an incident: ask each backend about each service, turn the
answers into findings, and report each backend's state. I/O lives here; the analysers it
calls are pure, and the CPU-heavy ones (change points, log templates) run in a thread so
that the API's event loop never waits on them.

Degrade, never block: every backend is optional, every call has a deadline, and a backend
that is down or not configured is reported as such while the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from reliability_studio.analysis import kube, logs, traces
from reliability_studio.analysis.findings import DOWNSTREAM_PREFIX, Finding
from reliability_studio.catalog.telemetry import EffectiveTelemetry
from reliability_studio.slos.promql import quote
from reliability_studio.telemetry.kubernetes import (
    KubernetesClient,
    KubernetesNotFoundError,
    Rollout,
)
from reliability_studio.telemetry.loki import LogLine, LokiClient, LokiNotConfigured
from reliability_studio.telemetry.prometheus import PrometheusClient
from reliability_studio.telemetry.tempo import (
    TempoClient,
    TempoNotConfigured,
    TempoTraceNotFound,
    Trace,
    TraceSummary,
)

log = logging.getLogger(__name__)
MAX_POINTS = 300  # samples per series in a range query
ERROR_LINES = '|~ "(?i)(error|exception|fatal|panic|fail)"'
TRACES_TO_OPEN = 10
LOG_LINES = 5000  # per window; see _covered_seconds
# The smallest change worth noticing per signal: after hours of exactly zero errors, one
# failed request in a thousand is news; a microsecond of latency is not.
SMALLEST_CHANGE = {"error_ratio": 0.001, "latency": 0.005, "saturation": 0.01, "traffic": 0.1}


@dataclass
class Backends:
    """The clients of the backends that are configured (None: not configured)."""

    prometheus: PrometheusClient | None = None
    loki: LokiClient | None = None
    tempo: TempoClient | None = None
    kubernetes: KubernetesClient | None = None


@dataclass(frozen=True)
class Target:
    """A service to look at, and where its telemetry lives."""

    name: str
    telemetry: EffectiveTelemetry


@dataclass
class Gathered:
    """What the backends said: findings, and each backend's state."""

    findings: list[Finding] = field(default_factory=list)
    backends: dict[str, str] = field(default_factory=dict)

    def note(self, backend: str, state: str) -> None:
        """Keep the worst state seen for a backend (any failure wins over ok)."""
        if self.backends.get(backend, "ok") == "ok":
            self.backends[backend] = state


@dataclass(frozen=True)
class Window:
    """The baseline before the incident, and the incident up to now."""

    baseline_start: datetime
    incident_start: datetime
    end: datetime

    @property
    def step_seconds(self) -> float:
        """A range-query step giving at most MAX_POINTS samples (and at least 15 s)."""
        return max(15.0, (self.end - self.baseline_start).total_seconds() / MAX_POINTS)


async def gather(
    backends: Backends, targets: list[Target], window: Window, *, timeout_seconds: float
) -> Gathered:
    """Findings about every target, from every configured backend, within the deadline."""
    gathered = Gathered()
    for name, client in (
        ("prometheus", backends.prometheus),
        ("loki", backends.loki),
        ("tempo", backends.tempo),
        ("kubernetes", backends.kubernetes),
    ):
        if client is None:
            gathered.backends[name] = "not_configured"
    calls = []
    for target in targets:
        if backends.prometheus is not None:
            calls.append(("prometheus", _metrics(backends.prometheus, target, window)))
        if backends.loki is not None:
            calls.append(("loki", _logs(backends.loki, target, window)))
        if backends.tempo is not None:
            calls.append(("tempo", _traces(backends.tempo, target, window)))
        if backends.kubernetes is not None:
            calls.append(("kubernetes", _kubernetes(backends.kubernetes, target, window)))
    results = await asyncio.gather(
        *(_bounded(backend, call, timeout_seconds) for backend, call in calls)
    )
    for backend, (findings, state) in zip((b for b, _ in calls), results, strict=True):
        gathered.findings.extend(findings)
        gathered.note(backend, state)
    return gathered


def downstream_services(findings: list[Finding]) -> set[str]:
    """Services that traces say errors originate in."""
    return {
        signal.removeprefix(DOWNSTREAM_PREFIX)
        for finding in findings
        for signal in finding.signals
        if signal.startswith(DOWNSTREAM_PREFIX)
    }


async def _bounded(
    backend: str, call: Awaitable[list[Finding]], timeout_seconds: float
) -> tuple[list[Finding], str]:
    try:
        async with asyncio.timeout(timeout_seconds):
            return await call, "ok"
    except (LokiNotConfigured, TempoNotConfigured):
        return [], "not_configured"
    except TimeoutError:
        return [], f"unavailable: no answer within {timeout_seconds:g} s"
    except Exception as error:
        log.info("evidence backend failed", extra={"backend": backend, "error": str(error)})
        return [], f"unavailable: {type(error).__name__}: {error}"[:500]


def _selector_matchers(selector: str) -> str:
    return selector.strip().removeprefix("{").removesuffix("}").strip()


def _default_queries(target: Target) -> dict[str, str]:
    """The golden signals by the usual metric names, unless the service names its own
    (traffic always by the request counter: a surge is often the root of the trouble)."""
    prometheus = target.telemetry.prometheus
    matchers = _selector_matchers(prometheus.selector or "")
    inner = f"{matchers}, " if matchers else ""
    queries = {
        "error_ratio": prometheus.error_ratio_query
        or f'sum(rate(http_requests_total{{{inner}code=~"5.."}}[5m]))'
        f" / sum(rate(http_requests_total{{{matchers}}}[5m]))",
        "latency": prometheus.latency_query
        or "histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{matchers}}}[5m])))",
        "traffic": f"sum(rate(http_requests_total{{{matchers}}}[5m]))",
    }
    if prometheus.saturation_query:
        queries["saturation"] = prometheus.saturation_query
    return queries


async def _metrics(client: PrometheusClient, target: Target, window: Window) -> list[Finding]:
    # Imported here, at the first analysis: anomaly detection needs numpy, which `serve`
    # would otherwise load at start-up.
    from reliability_studio.analysis import anomaly

    findings = []
    for signal, query in _default_queries(target).items():
        series = await client.query_range(
            query, window.baseline_start, window.end, window.step_seconds
        )
        for one in series[:5]:
            times = [time for time, _ in one.points]
            values = [value for _, value in one.points]
            found = await asyncio.to_thread(
                anomaly.detect,
                times,
                values,
                incident_start=window.incident_start,
                min_scale=SMALLEST_CHANGE[signal],
            )
            if found is not None:
                findings.append(
                    anomaly.metric_finding(
                        target.name,
                        signal,  # type: ignore[arg-type]
                        found,
                        query=query,
                        link=f"{client.base_url}/graph?g0.expr={query}",
                    )
                )
    return findings


async def _logs(client: LokiClient, target: Target, window: Window) -> list[Finding]:
    selector = target.telemetry.loki.selector or "{}"
    query = f"{selector} {ERROR_LINES}"
    baseline = await client.query_range(
        query, window.baseline_start, window.incident_start, limit=LOG_LINES
    )
    incident = await client.query_range(query, window.incident_start, window.end, limit=LOG_LINES)
    patterns = await asyncio.to_thread(
        logs.compare,
        baseline.lines,
        incident.lines,
        baseline_seconds=_covered_seconds(
            baseline.lines, window.baseline_start, window.incident_start
        ),
        incident_seconds=_covered_seconds(incident.lines, window.incident_start, window.end),
    )
    return logs.log_findings(target.name, patterns, query=query)


def _covered_seconds(lines: list[LogLine], start: datetime, end: datetime) -> float:
    """The time the lines stand for: the whole window, unless Loki's limit cut it short
    (newest first), in which case only the span the returned lines cover. Otherwise a
    busy baseline would look quiet and every template in the incident like a spike."""
    seconds = (end - start).total_seconds()
    if len(lines) >= LOG_LINES:
        seconds = (end - min(line.timestamp for line in lines)).total_seconds()
    return max(1.0, seconds)


async def _traces(client: TempoClient, target: Target, window: Window) -> list[Finding]:
    name = target.telemetry.tempo.service_name or target.name
    service = "resource.service.name = " + quote(name)
    errors_query = "{ " + service + " && status = error }"
    any_query = "{ " + service + " }"
    failing, recent, before = await asyncio.gather(
        client.search(errors_query, window.incident_start, window.end, limit=50),
        client.search(any_query, window.incident_start, window.end, limit=TRACES_TO_OPEN),
        client.search(
            any_query, window.baseline_start, window.incident_start, limit=TRACES_TO_OPEN
        ),
    )
    failing_traces, recent_traces, baseline_traces = await asyncio.gather(
        _open(client, failing), _open(client, recent), _open(client, before)
    )
    errors = traces.summarize_errors(name, failing_traces)
    slow = traces.slow_operations([*recent_traces, *failing_traces], baseline_traces, name)
    findings = traces.trace_findings(name, errors, slow, query=errors_query, link_template=None)
    # The finding is about the catalog service, whatever its traces call it.
    return [_renamed(finding, target.name) for finding in findings]


async def _open(client: TempoClient, summaries: list[TraceSummary]) -> list[Trace]:
    """The newest traces of a search, in full; one that expired meanwhile is skipped."""
    opened = await asyncio.gather(
        *(client.trace(summary.trace_id) for summary in summaries[:TRACES_TO_OPEN]),
        return_exceptions=True,
    )
    for result in opened:
        if isinstance(result, BaseException) and not isinstance(result, TempoTraceNotFound):
            raise result
    return [result for result in opened if isinstance(result, Trace)]


async def _kubernetes(client: KubernetesClient, target: Target, window: Window) -> list[Finding]:
    binding = target.telemetry.kubernetes
    namespace = binding.namespace or "default"
    since = window.baseline_start
    events = await client.events(namespace, since=since)
    pods = await client.pods(namespace)
    rollouts: list[Rollout] = []
    # Not a Deployment (a StatefulSet, a guessed name) means no rollouts to show, not a failure.
    if binding.workload:
        with contextlib.suppress(KubernetesNotFoundError):
            rollouts = await client.rollouts(namespace, binding.workload, since)
    return kube.kube_findings(
        target.name,
        namespace,
        binding.workload,
        events=events,
        pods=pods,
        rollouts=rollouts,
        since=since,
        incident_start=window.incident_start,
    )


def _renamed(finding: Finding, service: str) -> Finding:
    return finding if finding.service == service else replace(finding, service=service)


def window_for(incident_start: datetime, now: datetime, lookback: timedelta) -> Window:
    """From `lookback` before the incident until now (at least a minute after its start)."""
    return Window(
        baseline_start=incident_start - lookback,
        incident_start=incident_start,
        end=max(now, incident_start + timedelta(minutes=1)),
    )
