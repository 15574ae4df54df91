"""Benchmark: root-cause ranking quality on eight injected faults (issue 5).

    python -m bench.rca_quality [--seed 1] [--repeat 5]

Each scenario generates synthetic telemetry for five services of one shop, over the
gatherer's two hours of baseline plus the incident window:

    web -> checkout -> payments -> postgres      search (unrelated, normal noise)

Exactly one service is the cause. Its trouble starts at the fault (about four minutes before
the incident is declared, as an alert's `for:` would have it); each caller's metrics follow
one to three query steps after its callee, and the traces of callers show errors originating
in the cause (the deepest failing span, or a client span with no child whose `peer.service`
names it). Every service also has background noise: small metric jitter, business error
lines at a steady rate, a few failing traces, healthy pods; `search` additionally has a
flaky endpoint (about 3% of its traces fail, before and during the incident) and a routine
rollout 90 minutes before. Per scenario, the characteristic evidence is:

- `bad_deploy` (payments): a rollout of payments 2-6 min before its error surge; a new
  NullPointerException template in its logs; error spans originating in payments.
- `pool_exhaustion` (payments): pool saturation to 100%, "pool exhausted"/"too many
  connections" lines, latency x5 in payments and x2-3 in its callers; failing
  `pool.acquire` spans in payments.
- `oom_loop` (checkout): memory saturation ramping up before the fault, OOMKilled pods in
  CrashLoopBackOff and BackOff events, "fatal error: runtime: out of memory" lines; web's
  client spans to checkout fail with no checkout span (connection refused).
- `downstream_latency` (postgres): query latency x6 in postgres, then payments, checkout
  and web slower in turn; a few statement timeouts, seen in payments' traces as failing
  client spans to postgres (no child: postgres is not instrumented).
- `disk_full` (postgres): disk usage running away to 100% over 25 min, then "No space left
  on device" errors in postgres and failing database calls in payments' traces.
- `expired_cert` (payments): payments' serving certificate expires. How it shows: the
  handshake fails before any request reaches the app, so payments' own request metrics do
  not move; its TLS listener logs "http: TLS handshake error ... bad certificate" (a new
  template, as Go's net/http and Envoy do); checkout logs "x509: certificate has expired"
  and its client spans to payments fail with no payments span (`peer.service=payments`):
  the error originates at payments' edge.
- `config_error` (checkout): a ConfigMap edit (no rollout) is hot-reloaded: "config reload
  failed: invalid value" lines and failing requests; restarted pods wait in
  CreateContainerConfigError with `Failed` events ("couldn't find key ... in ConfigMap").
- `traffic_surge` (web, the entry service): request volume x4 at web, its CPU saturation
  up, then checkout's worker pool saturated, latency and 503s there ("worker pool
  exhausted"), errors in web's traces originating in checkout.

The analysis is the gatherer's, call for call (`analysis/gatherer.py`): the default
error-ratio, latency and traffic queries plus a saturation query (each service binds one
here), `anomaly.detect` with `SMALLEST_CHANGE[signal]`; the error-line filter `ERROR_LINES`,
at most `LOG_LINES` newest lines per window and `_covered_seconds`; the `TRACES_TO_OPEN`
newest error traces of each service in the incident window (slow operations are not
simulated: the gatherer's comparison with baseline traces is left out here);
`kube_findings` over the namespace's events and pods and the workload's rollouts. Then
`hypotheses.rank`. The time reported is the wall clock of the analysers plus the ranking (not the
generation of the data).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from bench.machine import machine
from reliability_studio.analysis import anomaly, kube, logs, traces
from reliability_studio.analysis.findings import Finding
from reliability_studio.analysis.gatherer import (
    ERROR_LINES,
    LOG_LINES,
    SMALLEST_CHANGE,
    TRACES_TO_OPEN,
    Target,
    Window,
    _covered_seconds,
    _default_queries,
    window_for,
)
from reliability_studio.analysis.hypotheses import EvidenceRef, Hypothesis, rank
from reliability_studio.catalog.telemetry import effective_telemetry
from reliability_studio.telemetry.kubernetes import (
    ContainerStatus,
    K8sEvent,
    PodStatus,
    Rollout,
    Termination,
)
from reliability_studio.telemetry.loki import LogLine
from reliability_studio.telemetry.tempo import Span, Trace

RESULTS = Path(__file__).parent / "results"
NAMESPACE = "shop"
CHAIN = ("web", "checkout", "payments", "postgres")
UNRELATED = "search"
SERVICES = (*CHAIN, UNRELATED)
LOOKBACK = timedelta(hours=2)
ANALYSED_AFTER = timedelta(minutes=20)  # the analysis runs this long after the declaration
DECLARED_AFTER = timedelta(minutes=4)  # the alert fires this long after the fault
TARGET_TOP1 = 0.8
TARGET_TOP3 = 1.0
# The line filter Loki applies (`|~ "(?i)(error|exception|fatal|panic|fail)"`).
ERROR_FILTER = re.compile(ERROR_LINES.split('"')[1])
# Seconds between sampled requests: one chain trace at web, one trace at search.
WEB_REQUEST_EVERY = 5.0
SEARCH_REQUEST_EVERY = 10.0
BACKGROUND_SPAN_ERROR = 0.002
SEARCH_FLAKY_ERROR = 0.03
POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- the scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One injected fault: where it is, the kind the ranking should name, how it shows."""

    name: str
    cause: str
    expected_kind: str
    inject: Callable[[World], None]


def _callers(service: str) -> list[str]:
    """The services that call `service`, nearest first (web calls checkout, ...)."""
    if service not in CHAIN:
        return []
    return list(reversed(CHAIN[: CHAIN.index(service)]))


@dataclass
class World:
    """The synthetic telemetry of one scenario run, and the knobs to inject a fault."""

    rng: Random
    window: Window
    fault_at: datetime
    times: list[datetime] = field(default_factory=list)
    metrics: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    lines: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    events: list[K8sEvent] = field(default_factory=list)
    pods: list[PodStatus] = field(default_factory=list)
    rollouts: dict[str, list[Rollout]] = field(default_factory=dict)
    # The failure injected into traces: (service, mode, probability at full strength,
    # onset, ramp). Modes: "server" (the service's server span fails), "internal" (a child
    # span of it fails), "edge" (the caller's client span fails, no span of the service),
    # "db" (payments' client span to postgres fails).
    trace_fault: tuple[str, str, float, datetime, timedelta] | None = None
    slow: dict[str, float] = field(default_factory=dict)  # latency factor once at fault
    onsets: dict[str, datetime] = field(default_factory=dict)

    @property
    def step(self) -> timedelta:
        """The range-query step the gatherer uses for this window."""
        return timedelta(seconds=self.window.step_seconds)

    def propagate(self, cause: str, first_at: datetime | None = None) -> dict[str, datetime]:
        """Onsets: the cause at the fault, each caller one to three steps after its callee."""
        at = first_at or self.fault_at
        onsets = {cause: at}
        for caller in _callers(cause):
            at += self.step * self.rng.randint(1, 3)
            onsets[caller] = at
        self.onsets = onsets
        return onsets

    def bump(
        self,
        service: str,
        signal: str,
        start: datetime,
        size: float,
        *,
        ramp: timedelta = timedelta(minutes=5),
        relative: bool = False,
    ) -> None:
        """Add `size` (times the baseline level when `relative`) from `start`, reached over
        `ramp` (a `rate()[5m]` window turns a step into a five-minute ramp)."""
        series = self.metrics[service][signal]
        level = statistics.median(series[:20]) if relative else 1.0
        for i, moment in enumerate(self.times):
            if moment < start:
                continue
            share = min(1.0, (moment - start) / ramp) if ramp.total_seconds() > 0 else 1.0
            jitter = 1.0 + self.rng.gauss(0.0, 0.05)
            series[i] += size * level * share * jitter

    def emit(
        self,
        service: str,
        make: Callable[[Random], str],
        start: datetime,
        per_minute: float,
        end: datetime | None = None,
    ) -> None:
        """Log lines from `start` to `end` (default: the window's end) at a random rate."""
        stop = end or self.window.end
        minutes = max(0.0, (stop - start).total_seconds() / 60.0)
        count = int(self.rng.gauss(per_minute * minutes, math.sqrt(per_minute * minutes) + 1))
        span = (stop - start).total_seconds()
        for _ in range(max(0, count)):
            moment = start + timedelta(seconds=self.rng.uniform(0, span))
            self.lines[service].append((moment, make(self.rng)))


def _hex(rng: Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _pod(rng: Random, workload: str) -> str:
    template = "".join(rng.choice(POD_ALPHABET) for _ in range(10))
    suffix = "".join(rng.choice(POD_ALPHABET) for _ in range(5))
    return f"{workload}-{template}-{suffix}"


def _ip(rng: Random) -> str:
    return f"10.0.{rng.randint(0, 20)}.{rng.randint(2, 250)}"


def _warning(
    involved: str, reason: str, message: str, count: int, first: datetime, last: datetime
) -> K8sEvent:
    return K8sEvent(
        namespace=NAMESPACE,
        name=f"{involved}.{int(first.timestamp() * 1000):x}",
        type="Warning",
        reason=reason,
        message=message,
        involved_kind="Pod",
        involved_name=involved,
        involved_namespace=NAMESPACE,
        count=count,
        first_seen=first,
        last_seen=last,
        source="kubelet",
    )


def _container(
    name: str,
    image: str,
    *,
    restarts: int = 0,
    waiting: str | None = None,
    last: Termination | None = None,
) -> ContainerStatus:
    return ContainerStatus(
        name=name,
        ready=waiting is None,
        restart_count=restarts,
        image=image,
        waiting_reason=waiting,
        waiting_message=None,
        terminated=None,
        last_terminated=last,
    )


def _pod_status(name: str, container: ContainerStatus, started: datetime) -> PodStatus:
    return PodStatus(
        namespace=NAMESPACE,
        name=name,
        phase="Running",
        reason=None,
        message=None,
        node_name="node-a",
        labels={"app": name.split("-")[0]},
        start_time=started,
        containers=(container,),
    )


# The characteristic evidence of each fault.


def _bad_deploy(world: World) -> None:
    rng, cause = world.rng, "payments"
    deployed = world.fault_at - timedelta(minutes=rng.uniform(2, 6))
    world.rollouts[cause].append(
        Rollout(
            deployment=cause,
            revision=43,
            replica_set=f"{cause}-7d9f8b6c4d",
            images={cause: "registry.example/payments:1.43.0"},
            previous_images={cause: "registry.example/payments:1.42.3"},
            time=deployed,
            rollback=False,
            change_cause="deploy 1.43.0",
        )
    )
    onsets = world.propagate(cause)
    world.bump(cause, "error_ratio", onsets[cause], rng.uniform(0.08, 0.2))
    world.bump("checkout", "error_ratio", onsets["checkout"], rng.uniform(0.05, 0.12))
    world.bump("web", "error_ratio", onsets["web"], rng.uniform(0.03, 0.08))
    world.emit(
        cause,
        lambda r: (
            "ERROR [PaymentService] java.lang.NullPointerException: Cannot invoke "
            f'"Currency.getCode()" because "order.currency" is null '
            f"(order_id={r.randint(1, 10**7)})"
        ),
        onsets[cause],
        20,
    )
    _caller_errors(world, onsets, "status 500 Internal Server Error")
    world.trace_fault = ("payments", "server", 0.6, onsets[cause], timedelta(minutes=1))


def _pool_exhaustion(world: World) -> None:
    rng, cause = world.rng, "payments"
    onsets = world.propagate(cause)
    world.bump(cause, "saturation", onsets[cause], 1.0 - 0.45, ramp=timedelta(minutes=2))
    world.bump(cause, "latency", onsets[cause], 4.0, relative=True)
    world.bump(cause, "error_ratio", onsets[cause], rng.uniform(0.03, 0.08))
    for caller, factor in (("checkout", 2.5), ("web", 2.0)):
        world.bump(caller, "latency", onsets[caller], factor, relative=True)
        world.bump(caller, "error_ratio", onsets[caller], rng.uniform(0.01, 0.04))
    world.emit(
        cause,
        lambda r: (
            "ERROR pool exhausted: timeout acquiring connection after 30000ms "
            f"(active=50 idle=0 waiting={r.randint(20, 400)})"
        ),
        onsets[cause],
        15,
    )
    world.emit(
        cause,
        lambda r: (
            "ERROR org.postgresql.util.PSQLException: FATAL: sorry, too many connections "
            f"for role payments (pid={r.randint(1000, 9999)})"
        ),
        onsets[cause],
        3,
    )
    _caller_errors(world, onsets, "context deadline exceeded after 5s")
    world.slow = {"payments": 5.0, "checkout": 2.5, "web": 2.0}
    world.trace_fault = ("payments", "internal", 0.3, onsets[cause], timedelta(minutes=2))


def _oom_loop(world: World) -> None:
    rng, cause = world.rng, "checkout"
    onsets = world.propagate(cause)
    # The leak fills the memory limit over the quarter hour before the first kill.
    world.bump(
        cause, "saturation", onsets[cause] - timedelta(minutes=15), 0.5, ramp=timedelta(minutes=15)
    )
    world.bump(cause, "error_ratio", onsets[cause], rng.uniform(0.1, 0.3))
    world.bump("web", "error_ratio", onsets["web"], rng.uniform(0.05, 0.2))
    world.emit(
        cause,
        lambda r: f"fatal error: runtime: out of memory (heap={r.randint(900, 1020)}MiB)",
        onsets[cause],
        0.5,
    )
    world.emit(
        "web",
        lambda r: (
            f'error calling checkout: Post "http://checkout.shop:8080/v1/cart": dial tcp '
            f"{_ip(r)}:8080: connect: connection refused"
        ),
        onsets["web"],
        15,
    )
    template = "".join(rng.choice(POD_ALPHABET) for _ in range(10))
    for k in range(3):
        pod = f"{cause}-{template}-{''.join(rng.choice(POD_ALPHABET) for _ in range(5))}"
        killed = onsets[cause] + timedelta(minutes=rng.uniform(0, 3) + 4 * k)
        world.pods.append(
            _pod_status(
                pod,
                _container(
                    cause,
                    "registry.example/checkout:2.8.1",
                    restarts=rng.randint(3, 8),
                    waiting="CrashLoopBackOff",
                    last=Termination("OOMKilled", 137, killed),
                ),
                world.window.baseline_start,
            )
        )
        world.events.append(
            _warning(
                pod,
                "BackOff",
                f"Back-off restarting failed container {cause} in pod {pod}",
                rng.randint(5, 30),
                killed + timedelta(seconds=30),
                world.window.end,
            )
        )
    world.trace_fault = ("checkout", "edge", 0.25, onsets[cause], timedelta(minutes=1))


def _downstream_latency(world: World) -> None:
    rng, cause = world.rng, "postgres"
    onsets = world.propagate(cause)
    for service, factor in (("postgres", 5.0), ("payments", 3.0), ("checkout", 2.0), ("web", 1.5)):
        world.bump(service, "latency", onsets[service], factor, relative=True)
    world.bump("payments", "error_ratio", onsets["payments"], rng.uniform(0.005, 0.02))
    world.emit(
        cause,
        lambda r: (
            "ERROR:  canceling statement due to statement timeout "  # noqa: S608 - a log line
            f"STATEMENT: SELECT * FROM orders WHERE customer_id = {r.randint(1, 10**6)}"
        ),
        onsets[cause],
        2,
    )
    world.emit(
        "payments",
        lambda r: f"error loading order {r.randint(1, 10**7)}: context deadline exceeded after 5s",
        onsets["payments"],
        2,
    )
    world.slow = {"postgres": 6.0, "payments": 4.0, "checkout": 3.0, "web": 2.5}
    world.trace_fault = ("postgres", "db", 0.05, onsets[cause], timedelta(minutes=2))


def _disk_full(world: World) -> None:
    rng, cause = world.rng, "postgres"
    onsets = world.propagate(cause)
    # WAL piles up: the disk goes from its usual ~45% to full over 25 minutes.
    world.bump(
        cause, "saturation", onsets[cause] - timedelta(minutes=25), 0.55, ramp=timedelta(minutes=25)
    )
    world.bump(cause, "error_ratio", onsets[cause], rng.uniform(0.2, 0.5))
    world.bump("payments", "error_ratio", onsets["payments"], rng.uniform(0.1, 0.3))
    world.bump("checkout", "error_ratio", onsets["checkout"], rng.uniform(0.05, 0.2))
    world.bump("web", "error_ratio", onsets["web"], rng.uniform(0.03, 0.1))
    world.emit(
        cause,
        lambda r: (
            f'ERROR:  could not extend file "base/16384/{r.randint(16000, 30000)}": '
            "No space left on device"
        ),
        onsets[cause],
        10,
    )
    world.emit(
        cause,
        lambda r: (
            f'PANIC:  could not write to file "pg_wal/xlogtemp.{r.randint(100, 999)}": '
            "No space left on device"
        ),
        onsets[cause],
        0.3,
    )
    world.emit(
        "payments",
        lambda r: (
            f"ERROR could not save payment {r.randint(1, 10**7)}: "
            "pq: could not extend file: No space left on device"
        ),
        onsets["payments"],
        10,
    )
    _caller_errors(world, {k: v for k, v in onsets.items() if k != "payments"}, "status 500")
    world.trace_fault = ("postgres", "db", 0.4, onsets[cause], timedelta(minutes=1))


def _expired_cert(world: World) -> None:
    rng, cause = world.rng, "payments"
    onsets = world.propagate(cause)
    # Payments' own request metrics do not move: no request gets past the handshake.
    world.bump("checkout", "error_ratio", onsets["checkout"], rng.uniform(0.1, 0.3))
    world.bump("web", "error_ratio", onsets["web"], rng.uniform(0.05, 0.2))
    world.emit(
        cause,
        lambda r: (
            f"http: TLS handshake error from {_ip(r)}:{r.randint(30000, 60000)}: "
            "remote error: tls: bad certificate"
        ),
        onsets[cause],
        30,
    )
    world.emit(
        "checkout",
        lambda r: (
            'error calling payments: Post "https://payments.shop:8443/v1/charge": tls: failed '
            "to verify certificate: x509: certificate has expired or is not yet valid: current "
            f"time {r.choice(['2026-11-26T10:0', '2026-11-26T10:1'])}{r.randint(0, 9)}:00Z "
            "is after 2026-11-26T09:58:00Z"
        ),
        onsets["checkout"],
        25,
    )
    _caller_errors(world, {"payments": onsets[cause], "web": onsets["web"]}, "status 502")
    world.trace_fault = ("payments", "edge", 0.5, onsets[cause], timedelta(seconds=30))


def _config_error(world: World) -> None:
    rng, cause = world.rng, "checkout"
    onsets = world.propagate(cause)
    world.bump(cause, "error_ratio", onsets[cause], rng.uniform(0.1, 0.4))
    world.bump("web", "error_ratio", onsets["web"], rng.uniform(0.05, 0.2))
    world.emit(
        cause,
        lambda r: (
            'ERROR config reload failed: invalid value "fasle" for key '
            f'"payments.retry.enabled" (configmap checkout-config, version {r.randint(100, 999)})'
        ),
        onsets[cause],
        1,
    )
    world.emit(
        cause,
        lambda r: (
            f"ERROR order {r.randint(1, 10**7)} failed: payments client not configured: "
            "missing key payments.url"
        ),
        onsets[cause],
        20,
    )
    _caller_errors(world, {"checkout": onsets[cause], "web": onsets["web"]}, "status 500")
    template = "".join(rng.choice(POD_ALPHABET) for _ in range(10))
    for _ in range(2):
        pod = f"{cause}-{template}-{''.join(rng.choice(POD_ALPHABET) for _ in range(5))}"
        restarted = onsets[cause] + timedelta(minutes=rng.uniform(1, 6))
        world.pods.append(
            _pod_status(
                pod,
                _container(
                    cause,
                    "registry.example/checkout:2.8.1",
                    restarts=1,
                    waiting="CreateContainerConfigError",
                ),
                restarted,
            )
        )
        world.events.append(
            _warning(
                pod,
                "Failed",
                "Error: couldn't find key payments.url in ConfigMap shop/checkout-config",
                rng.randint(3, 20),
                restarted,
                world.window.end,
            )
        )
    world.trace_fault = ("checkout", "server", 0.5, onsets[cause], timedelta(minutes=1))


def _traffic_surge(world: World) -> None:
    rng, cause = world.rng, "web"
    at = world.fault_at
    world.onsets = {cause: at}
    # Traffic x4 at web, and its CPU shows it.
    world.bump(cause, "traffic", at, 3.0, ramp=timedelta(minutes=3), relative=True)
    world.bump(cause, "saturation", at, 0.45, ramp=timedelta(minutes=3))
    checkout_at = at + world.step * rng.randint(1, 3)
    world.onsets["checkout"] = checkout_at
    world.bump("checkout", "saturation", checkout_at, 0.55, ramp=timedelta(minutes=2))
    world.bump("checkout", "latency", checkout_at, 3.0, relative=True)
    world.bump("checkout", "error_ratio", checkout_at, rng.uniform(0.05, 0.15))
    web_errors_at = checkout_at + world.step * rng.randint(1, 3)
    world.onsets["web (errors)"] = web_errors_at
    world.bump(cause, "latency", web_errors_at, 1.5, relative=True)
    world.bump(cause, "error_ratio", web_errors_at, rng.uniform(0.03, 0.1))
    world.emit(
        "checkout",
        lambda r: (
            "ERROR request rejected: worker pool exhausted "
            f"(max_workers=64 queue={r.randint(400, 512)})"
        ),
        checkout_at,
        20,
    )
    world.emit(
        cause,
        lambda r: f"error calling checkout: status 503 Service Unavailable (id={_hex(r, 16)})",
        web_errors_at,
        20,
    )
    world.slow = {"checkout": 4.0, "web": 2.5}
    world.trace_fault = ("checkout", "server", 0.1, checkout_at, timedelta(minutes=1))


def _call_error(callee: str, cause_text: str) -> Callable[[Random], str]:
    """A caller's log line for a failed call to `callee`."""

    def make(rng: Random) -> str:
        return f"error calling {callee}: {cause_text} (request_id={_hex(rng, 16)})"

    return make


def _caller_errors(world: World, onsets: dict[str, datetime], cause_text: str) -> None:
    """Each caller logs its failed calls to the service below it, from its own onset."""
    for service, at in onsets.items():
        callee_index = CHAIN.index(service) + 1 if service in CHAIN else len(CHAIN)
        if service not in CHAIN or callee_index >= len(CHAIN) or service == "payments":
            continue
        callee = CHAIN[callee_index]
        world.emit(service, _call_error(callee, cause_text), at, 10)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("bad_deploy", "payments", "deploy", _bad_deploy),
    Scenario("pool_exhaustion", "payments", "resource_exhaustion", _pool_exhaustion),
    Scenario("oom_loop", "checkout", "resource_exhaustion", _oom_loop),
    Scenario("downstream_latency", "postgres", "dependency_failure", _downstream_latency),
    Scenario("disk_full", "postgres", "resource_exhaustion", _disk_full),
    Scenario("expired_cert", "payments", "dependency_failure", _expired_cert),
    Scenario("config_error", "checkout", "config", _config_error),
    Scenario("traffic_surge", "web", "saturation", _traffic_surge),
)


# --- the baseline every scenario shares ------------------------------------------------------

BASE_LEVELS = {
    "error_ratio": (0.0005, 0.002),
    "latency": (0.05, 0.25),
    "saturation": (0.35, 0.5),
    "traffic": (50.0, 300.0),
}
BACKGROUND_LINES: dict[str, tuple[Callable[[Random], str], float]] = {
    "web": (
        lambda r: f"error rendering recommendations: context deadline exceeded ({_hex(r, 16)})",
        0.2,
    ),
    "checkout": (lambda r: f'error validating coupon code="{_hex(r, 8)}": coupon expired', 0.3),
    "payments": (
        lambda r: f"card declined: error code={r.randint(5, 60)} order={r.randint(1, 10**7)}",
        0.5,
    ),
    "postgres": (
        lambda r: (
            'ERROR:  duplicate key value violates unique constraint "orders_pkey" '
            f"DETAIL: Key (id)=({r.randint(1, 10**7)}) already exists."
        ),
        0.25,
    ),
    "search": (
        lambda r: f"ERROR query parse exception: unexpected token at position {r.randint(1, 80)}",
        1.0,
    ),
}


def build_world(scenario: Scenario, seed: int) -> World:
    """The telemetry of one run of `scenario`: the shared baseline, then the fault."""
    rng = Random(f"{scenario.name}:{seed}")  # noqa: S311 - a reproducible workload, not a secret
    incident_start = datetime(2026, 11, 26, 10, 0, tzinfo=UTC) + timedelta(
        minutes=rng.uniform(0, 600)
    )
    window = window_for(incident_start, incident_start + ANALYSED_AFTER, LOOKBACK)
    fault_at = incident_start - DECLARED_AFTER + timedelta(seconds=rng.uniform(-60, 60))
    world = World(rng=rng, window=window, fault_at=fault_at)
    step = world.step
    moment = window.baseline_start
    while moment <= window.end:
        world.times.append(moment)
        moment += step
    for service in SERVICES:
        world.metrics[service] = {}
        for signal, (low, high) in BASE_LEVELS.items():
            level = rng.uniform(low, high)
            spread = 0.3 if signal == "error_ratio" else 0.04
            world.metrics[service][signal] = [
                max(0.0, level * (1.0 + rng.gauss(0.0, spread))) for _ in world.times
            ]
        world.lines[service] = []
        make, per_minute = BACKGROUND_LINES[service]
        world.emit(service, make, window.baseline_start, per_minute)
        world.emit(
            service, lambda r: f"GET /health 200 {r.randint(1, 9)}ms", window.baseline_start, 2
        )
        world.rollouts[service] = []
        for _ in range(2):
            name = _pod(rng, service)
            world.pods.append(
                _pod_status(
                    name,
                    _container(service, f"registry.example/{service}:1.0"),
                    window.baseline_start - timedelta(days=2),
                )
            )
    world.metrics[UNRELATED]["error_ratio"] = [
        max(0.0, SEARCH_FLAKY_ERROR * (1.0 + rng.gauss(0.0, 0.1))) for _ in world.times
    ]
    world.rollouts[UNRELATED].append(
        Rollout(
            deployment=UNRELATED,
            revision=12,
            replica_set=f"{UNRELATED}-5c8d7f9b6b",
            images={UNRELATED: "registry.example/search:3.4.0"},
            previous_images={UNRELATED: "registry.example/search:3.3.9"},
            time=incident_start - timedelta(minutes=90),
            rollback=False,
            change_cause="routine deploy",
        )
    )
    scenario.inject(world)
    return world


# --- traces --------------------------------------------------------------------------------


def _span(
    rng: Random,
    trace_id: str,
    parent: Span | None,
    service: str,
    name: str,
    kind: str,
    start: datetime,
    duration: timedelta,
    *,
    error: bool = False,
    attributes: dict[str, Any] | None = None,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=_hex(rng, 16),
        parent_span_id=parent.span_id if parent else None,
        service_name=service,
        name=name,
        kind=kind,
        start=start,
        end=start + duration,
        duration=duration,
        is_error=error,
        status_message="error" if error else None,
        attributes=attributes or {},
        resource_attributes={"service.name": service},
    )


def _chain_trace(world: World, start: datetime) -> Trace:
    """One request down the chain; it fails where the injected fault (or noise) says."""
    rng = world.rng
    failure: tuple[str, str] | None = None
    fault = world.trace_fault
    if fault is not None and start >= fault[3]:
        share = min(1.0, (start - fault[3]) / fault[4]) if fault[4].total_seconds() else 1.0
        if rng.random() < fault[2] * share:
            failure = (fault[0], fault[1])
    if failure is None:
        for service in CHAIN[:-1]:
            if rng.random() < BACKGROUND_SPAN_ERROR:
                failure = (service, "server")
                break
    slow = {
        s: f if start >= world.onsets.get(s, world.window.end) else 1.0
        for s, f in world.slow.items()
    }
    trace_id = _hex(rng, 32)
    operations = {
        "web": "GET /checkout",
        "checkout": "POST /v1/cart",
        "payments": "POST /v1/charge",
    }
    spans: list[Span] = []
    parent: Span | None = None
    moment = start
    for depth, service in enumerate(CHAIN[:-1]):
        duration = timedelta(milliseconds=40 * (4 - depth)) * slow.get(service, 1.0)
        server = _span(
            rng,
            trace_id,
            parent,
            service,
            operations[service],
            "server",
            moment,
            duration,
            error=failure == (service, "server"),
        )
        spans.append(server)
        if failure == (service, "server"):
            break
        if failure == (service, "internal"):
            spans.append(
                _span(
                    rng,
                    trace_id,
                    server,
                    service,
                    "pool.acquire",
                    "internal",
                    moment,
                    duration * 0.9,
                    error=True,
                )
            )
            break
        callee = CHAIN[depth + 1]
        attributes: dict[str, Any] = {"peer.service": callee}
        if callee == "postgres":
            attributes["db.system"] = "postgresql"
        client = _span(
            rng,
            trace_id,
            server,
            service,
            "SELECT orders" if callee == "postgres" else operations[callee],
            "client",
            moment + timedelta(milliseconds=2),
            duration * 0.8,
            error=failure == (callee, "edge") or failure == (callee, "db"),
            attributes=attributes,
        )
        spans.append(client)
        if client.is_error:
            break
        parent = client
        moment += timedelta(milliseconds=3)
    if any(span.is_error for span in spans):
        # An error propagates up: every ancestor of the failing span fails too.
        spans = [_with_error(span) if not span.is_error else span for span in spans]
    return Trace(trace_id=trace_id, spans=tuple(sorted(spans, key=lambda s: s.start)))


def _with_error(span: Span) -> Span:
    return replace(span, is_error=True, status_message="error")


def _search_trace(world: World, start: datetime) -> Trace:
    rng = world.rng
    trace_id = _hex(rng, 32)
    failed = rng.random() < SEARCH_FLAKY_ERROR
    server = _span(
        rng,
        trace_id,
        None,
        UNRELATED,
        "GET /search",
        "server",
        start,
        timedelta(milliseconds=rng.uniform(20, 60)),
        error=failed,
    )
    return Trace(trace_id=trace_id, spans=(server,))


def incident_traces(world: World) -> list[Trace]:
    """The sampled requests of the incident window, oldest first."""
    found: list[Trace] = []
    window = world.window
    for every, make in ((WEB_REQUEST_EVERY, _chain_trace), (SEARCH_REQUEST_EVERY, _search_trace)):
        moment = window.incident_start
        while moment < window.end:
            found.append(make(world, moment))
            moment += timedelta(seconds=world.rng.expovariate(1.0 / every))
    return sorted(found, key=lambda trace: trace.spans[0].start)


# --- the analysis (the gatherer's calls, without the I/O) ---------------------------------


def _target(service: str) -> Target:
    """A catalog service with the default bindings plus a saturation query."""
    saturation = f'max(saturation_ratio{{job="{service}"}})'
    return Target(
        service,
        effective_telemetry(service, {"prometheus": {"saturation_query": saturation}}),
    )


def _log_window(
    lines: list[tuple[datetime, str]], start: datetime, end: datetime, service: str
) -> list[LogLine]:
    """What Loki answers: the error lines of the window, at most LOG_LINES, newest first."""
    kept = [
        LogLine(
            timestamp=moment,
            line=text,
            labels={"service_name": service},
            timestamp_ns=int(moment.timestamp() * 1e9),
        )
        for moment, text in lines
        if start <= moment < end and ERROR_FILTER.search(text)
    ]
    kept.sort(key=lambda line: line.timestamp, reverse=True)
    return kept[:LOG_LINES]


def analyse(world: World) -> tuple[list[Finding], list[Hypothesis], float]:
    """The findings, the ranking and the seconds they took (analysers plus ranking)."""
    window = world.window
    prepared_logs = {
        service: (
            _log_window(
                world.lines[service], window.baseline_start, window.incident_start, service
            ),
            _log_window(world.lines[service], window.incident_start, window.end, service),
        )
        for service in SERVICES
    }
    all_traces = incident_traces(world)
    searched = {
        # `{ resource.service.name = X && status = error }`, newest first, the first opened.
        service: [
            trace
            for trace in reversed(all_traces)
            if any(s.is_error and s.service_name == service for s in trace.spans)
        ][:TRACES_TO_OPEN]
        for service in SERVICES
    }
    began = time.perf_counter()
    findings: list[Finding] = []
    for service in SERVICES:
        target = _target(service)
        for signal, query in _default_queries(target).items():
            found = anomaly.detect(
                world.times,
                world.metrics[service][signal],
                incident_start=window.incident_start,
                min_scale=SMALLEST_CHANGE[signal],
            )
            if found is not None:
                findings.append(
                    anomaly.metric_finding(service, signal, found, query=query, link=None)  # type: ignore[arg-type]
                )
        baseline, incident = prepared_logs[service]
        patterns = logs.compare(
            baseline,
            incident,
            baseline_seconds=_covered_seconds(
                baseline, window.baseline_start, window.incident_start
            ),
            incident_seconds=_covered_seconds(incident, window.incident_start, window.end),
        )
        findings.extend(logs.log_findings(service, patterns, query=ERROR_LINES))
        errors = traces.summarize_errors(service, searched[service])
        findings.extend(traces.trace_findings(service, errors, [], query="", link_template=None))
        findings.extend(
            kube.kube_findings(
                service,
                NAMESPACE,
                service,
                events=world.events,
                pods=world.pods,
                rollouts=world.rollouts[service],
                since=window.baseline_start,
                incident_start=window.incident_start,
            )
        )
    evidence = [EvidenceRef(id=f"e{i}", finding=f) for i, f in enumerate(findings)]
    ranked = rank(evidence, window.incident_start)
    return findings, ranked, time.perf_counter() - began


# --- running and reporting -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How the ranking did on one scenario run."""

    scenario: str
    seed: int
    cause: str
    rank: int | None  # 1-based; None when the cause is not among the hypotheses
    expected_kind: str
    cause_kind: str | None  # the kind of the cause's own hypothesis
    top_service: str | None
    top_kind: str | None
    seconds: float
    findings: int
    ranking: list[dict[str, Any]]

    @property
    def top1(self) -> bool:
        """The cause ranks first."""
        return self.rank == 1

    @property
    def top3(self) -> bool:
        """The cause ranks among the first three."""
        return self.rank is not None and self.rank <= 3


def run_scenario(scenario: Scenario, seed: int) -> Outcome:
    """Generate one run of `scenario`, analyse it, and score the ranking."""
    world = build_world(scenario, seed)
    findings, ranked, seconds = analyse(world)
    position = next((i + 1 for i, h in enumerate(ranked) if h.service == scenario.cause), None)
    cause = ranked[position - 1] if position is not None else None
    return Outcome(
        scenario=scenario.name,
        seed=seed,
        cause=scenario.cause,
        rank=position,
        expected_kind=scenario.expected_kind,
        cause_kind=cause.kind if cause else None,
        top_service=ranked[0].service if ranked else None,
        top_kind=ranked[0].kind if ranked else None,
        seconds=seconds,
        findings=len(findings),
        ranking=[
            {"service": h.service, "kind": h.kind, "score": h.score, "parts": h.parts}
            for h in ranked
        ],
    )


def run_suite(seed: int = 1) -> list[Outcome]:
    """Every scenario once with `seed`."""
    return [run_scenario(scenario, seed) for scenario in SCENARIOS]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Top-1 and top-3 accuracy over all runs, and analysis time."""
    seconds = sorted(o.seconds for o in outcomes)
    return {
        "runs": len(outcomes),
        "top1": round(sum(o.top1 for o in outcomes) / len(outcomes), 4),
        "top3": round(sum(o.top3 for o in outcomes) / len(outcomes), 4),
        "kind_match": round(
            sum(o.cause_kind == o.expected_kind for o in outcomes) / len(outcomes), 4
        ),
        "seconds_median": round(statistics.median(seconds), 4),
        "seconds_max": round(seconds[-1], 4),
        "target_top1": TARGET_TOP1,
        "target_top3": TARGET_TOP3,
    }


def table(outcomes: list[Outcome]) -> str:
    """A Markdown table, one row per scenario over all its runs."""
    rows = [
        "| scenario | cause | ranks of cause | top-1 | top-3 | kind (cause's) / expected "
        "| top-1 when missed | analysis s (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        mine = [o for o in outcomes if o.scenario == scenario.name]
        ranks = ",".join(str(o.rank) if o.rank else "-" for o in mine)
        kinds = sorted({o.cause_kind or "-" for o in mine})
        missed = sorted({f"{o.top_service} ({o.top_kind})" for o in mine if not o.top1})
        rows.append(
            f"| {scenario.name} | {scenario.cause} | {ranks} "
            f"| {sum(o.top1 for o in mine)}/{len(mine)} | {sum(o.top3 for o in mine)}/{len(mine)} "
            f"| {'/'.join(kinds)} / {scenario.expected_kind} | {', '.join(missed) or '-'} "
            f"| {statistics.median(o.seconds for o in mine):.3f} |"
        )
    total = summary(outcomes)
    rows.append(
        f"\nTop-1: {total['top1']:.0%} (target {TARGET_TOP1:.0%}), top-3: {total['top3']:.0%} "
        f"(target {TARGET_TOP3:.0%}), kind of the cause as expected: {total['kind_match']:.0%}; "
        f"analysis {total['seconds_median']:.3f} s median, {total['seconds_max']:.3f} s max "
        f"per scenario, over {total['runs']} runs."
    )
    return "\n".join(rows)


def main() -> None:
    """Run the suite `--repeat` times from `--seed`, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    outcomes = [o for k in range(args.repeat) for o in run_suite(args.seed + k)]
    print(table(outcomes))
    if args.no_write:
        return
    today = date.today().isoformat()
    result = {
        "benchmark": "rca_quality",
        "date": today,
        "machine": machine(),
        "seed": args.seed,
        "repeat": args.repeat,
        "services": list(SERVICES),
        "lookback_seconds": LOOKBACK.total_seconds(),
        "incident_seconds": ANALYSED_AFTER.total_seconds(),
        "summary": summary(outcomes),
        "runs": [
            {
                "scenario": o.scenario,
                "seed": o.seed,
                "cause": o.cause,
                "rank": o.rank,
                "top1": o.top1,
                "top3": o.top3,
                "expected_kind": o.expected_kind,
                "cause_kind": o.cause_kind,
                "top_service": o.top_service,
                "top_kind": o.top_kind,
                "seconds": round(o.seconds, 4),
                "findings": o.findings,
                "ranking": o.ranking,
            }
            for o in outcomes
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{today}-rca-quality.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
