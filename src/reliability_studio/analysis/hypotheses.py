"""Ranking findings into root-cause hypotheses: deterministic and explainable. Pure logic.

For each service that the evidence points at, the score adds up:

- **strength**: how abnormal its own findings are (noisy-or of their scores), weighted 0.5;
- **earliest anomaly**: the service whose trouble started first gets 0.2, the next 0.1;
- **propagation**: traces of other services saying their errors originate here, 0.25;
  a service whose own errors originate downstream is a victim, and loses 0.3, unless its
  request rate surged before the trouble downstream began (then the load is its doing, and
  the service it overloaded gets no origin bonus from it);
- **coincidence with a change**: a rollout or config error of the service shortly before
  its first anomaly (or the incident), 0.2.

The total is clamped to [0, 1]; ties break on the earliest start, then the name, so the
same evidence always gives the same ranking. The kind is the strongest mechanism among the
service's own signals; each hypothesis says in one sentence why it ranks where it does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from reliability_studio.analysis.findings import (
    CONFIG,
    CRASHLOOP,
    DOWNSTREAM_PREFIX,
    ERROR_SURGE,
    LATENCY,
    OOM,
    ROLLOUT,
    SATURATION,
    SCHEDULING,
    TRAFFIC,
    Finding,
)

HypothesisKind = Literal[
    "deploy",
    "resource_exhaustion",
    "dependency_failure",
    "error_surge",
    "saturation",
    "config",
]
CHANGE_WINDOW = timedelta(minutes=30)
STRENGTH_WEIGHT = 0.5
EARLIEST_BONUS = (0.2, 0.1)
ORIGIN_BONUS = 0.25
VICTIM_PENALTY = 0.3
CHANGE_BONUS = 0.2
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class EvidenceRef:
    """A finding with the id it was stored under."""

    id: str
    finding: Finding


@dataclass(frozen=True)
class Hypothesis:
    """A suspected root cause."""

    service: str
    component: str | None
    kind: HypothesisKind
    score: float
    evidence_ids: list[str]
    explanation: str
    started_at: datetime | None = None
    parts: dict[str, float] = field(default_factory=dict)


def rank(evidence: Sequence[EvidenceRef], incident_start: datetime) -> list[Hypothesis]:
    """Hypotheses, most likely first."""
    by_service: dict[str, list[EvidenceRef]] = defaultdict(list)
    for ref in evidence:
        by_service[ref.finding.service].append(ref)
    starts = {service: _first_start(refs) for service, refs in by_service.items()}
    surges = {service: _surge_start(refs) for service, refs in by_service.items()}
    blamed_by: dict[str, set[str]] = defaultdict(set)
    surging: set[str] = set()
    for ref in evidence:
        blamer = ref.finding.service
        for signal in ref.finding.signals:
            origin = signal.removeprefix(DOWNSTREAM_PREFIX)
            if not signal.startswith(DOWNSTREAM_PREFIX) or origin == blamer:
                continue
            if _load_driven(surges.get(blamer), starts.get(origin)):
                surging.add(blamer)  # its surge overloaded the origin: not a victim
            else:
                blamed_by[origin].add(blamer)
    services = set(by_service) | set(blamed_by)
    starts.update({service: None for service in services - set(starts)})
    order = sorted((start, service) for service, start in starts.items() if start is not None)
    earliest_rank = {service: position for position, (_, service) in enumerate(order)}

    hypotheses = [
        _hypothesis(
            service,
            by_service.get(service, []),
            blamed_by.get(service, set()),
            earliest_rank.get(service),
            starts[service],
            incident_start,
            surging=service in surging,
        )
        for service in services
    ]
    return sorted(
        hypotheses,
        key=lambda h: (-h.score, h.started_at or _NEVER, h.service),
    )


def _surge_start(refs: list[EvidenceRef]) -> datetime | None:
    """When the service's request rate started to surge, if it did."""
    starts = [
        ref.finding.started_at
        for ref in refs
        if TRAFFIC in ref.finding.signals and ref.finding.started_at is not None
    ]
    return min(starts, default=None)


def _load_driven(surge_at: datetime | None, origin_trouble_at: datetime | None) -> bool:
    """Errors a caller sees downstream follow from its own surge when the surge came first."""
    if surge_at is None:
        return False
    return origin_trouble_at is None or surge_at <= origin_trouble_at


def _hypothesis(
    service: str,
    refs: list[EvidenceRef],
    blamed_by: set[str],
    earliest_rank: int | None,
    started_at: datetime | None,
    incident_start: datetime,
    *,
    surging: bool = False,
) -> Hypothesis:
    signals = {signal for ref in refs for signal in ref.finding.signals}
    own_scores = [ref.finding.score for ref in refs if not _is_victim_evidence(ref, service)]
    strength = 1.0 - math.prod(1.0 - score for score in own_scores) if own_scores else 0.0
    parts = {"strength": STRENGTH_WEIGHT * strength}
    if earliest_rank is not None and earliest_rank < len(EARLIEST_BONUS):
        parts["earliest"] = EARLIEST_BONUS[earliest_rank]
    if blamed_by:
        parts["origin"] = ORIGIN_BONUS
    downstream = sorted(
        signal.removeprefix(DOWNSTREAM_PREFIX)
        for signal in signals
        if signal.startswith(DOWNSTREAM_PREFIX) and signal != DOWNSTREAM_PREFIX + service
    )
    if downstream and not surging:
        parts["victim"] = -VICTIM_PENALTY
    change = _change_before(refs, started_at or incident_start)
    if change is not None:
        parts["change"] = CHANGE_BONUS
    score = min(1.0, max(0.0, sum(parts.values())))
    kind = _kind(signals, blamed_by, change is not None)
    best = max(refs, key=lambda ref: ref.finding.score, default=None)
    return Hypothesis(
        service=service,
        component=best.finding.component if best else None,
        kind=kind,
        score=round(score, 4),
        evidence_ids=[ref.id for ref in sorted(refs, key=lambda ref: -ref.finding.score)],
        explanation=_explain(
            service, kind, parts, blamed_by, [] if surging else downstream, change, started_at
        )
        + (" Its request rate surged before the errors downstream began." if surging else ""),
        started_at=started_at,
        parts={name: round(value, 4) for name, value in parts.items()},
    )


def _is_victim_evidence(ref: EvidenceRef, service: str) -> bool:
    """Errors that a service's traces attribute to another service are not its own."""
    return any(
        signal.startswith(DOWNSTREAM_PREFIX) and signal != DOWNSTREAM_PREFIX + service
        for signal in ref.finding.signals
    )


def _first_start(refs: list[EvidenceRef]) -> datetime | None:
    starts = [
        ref.finding.started_at
        for ref in refs
        if ref.finding.started_at is not None and ref.finding.kind != "deploy"
    ]
    return min(starts, default=None)


def _change_before(refs: list[EvidenceRef], trouble_at: datetime) -> Finding | None:
    """A rollout or config change of the service within the window before its trouble."""
    for ref in sorted(refs, key=lambda ref: -ref.finding.score):
        finding = ref.finding
        if not finding.signals & {ROLLOUT, CONFIG}:
            continue
        if finding.started_at is None and CONFIG in finding.signals:
            return finding
        if finding.started_at is not None and (
            trouble_at - CHANGE_WINDOW <= finding.started_at <= trouble_at + timedelta(minutes=5)
        ):
            return finding
    return None


def _kind(signals: set[str], blamed_by: set[str], changed: bool) -> HypothesisKind:
    """The mechanism the service's own signals point at, strongest first."""
    if changed and ROLLOUT in signals:
        return "deploy"
    if CONFIG in signals:
        return "config"
    if TRAFFIC in signals:
        return "saturation"
    if signals & {OOM, CRASHLOOP, SCHEDULING} or {SATURATION, ERROR_SURGE} <= signals:
        return "resource_exhaustion"
    if blamed_by:
        return "dependency_failure"
    if signals & {SATURATION, TRAFFIC} or (LATENCY in signals and ERROR_SURGE not in signals):
        return "saturation"
    return "error_surge"


KIND_PHRASES: dict[HypothesisKind, str] = {
    "deploy": "a deploy",
    "resource_exhaustion": "resource exhaustion",
    "dependency_failure": "a failing dependency",
    "error_surge": "a surge of errors",
    "saturation": "saturation",
    "config": "a configuration error",
}


def _explain(
    service: str,
    kind: HypothesisKind,
    parts: dict[str, float],
    blamed_by: set[str],
    downstream: list[str],
    change: Finding | None,
    started_at: datetime | None,
) -> str:
    reasons = []
    if "earliest" in parts and started_at is not None:
        first = "first" if parts["earliest"] == EARLIEST_BONUS[0] else "second"
        reasons.append(f"its anomaly started {first}, at {started_at:%H:%M} UTC")
    if blamed_by:
        reasons.append(
            "traces of " + ", ".join(sorted(blamed_by)) + " show errors originating in it"
        )
    if change is not None:
        reasons.append(f"it changed just before: {change.title}")
    if downstream:
        reasons.append("but its own errors come from " + ", ".join(downstream))
    if not reasons:
        reasons.append("its own telemetry is abnormal")
    return f"{service} is suspected of {KIND_PHRASES[kind]}: " + "; ".join(reasons) + "."
