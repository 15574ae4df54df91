"""A finding: one piece of evidence about one service, from one backend.

Every analyser (metrics, logs, traces, Kubernetes) turns what it saw into findings; the
gatherer stores them as evidence and timeline events, and the ranking reads only these.
Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FindingKind = Literal["metric_anomaly", "log_pattern", "trace_errors", "k8s_event", "deploy"]
Source = Literal["prometheus", "loki", "tempo", "kubernetes"]

# Signals: what a finding suggests, read by the ranking (hypotheses.py).
ERROR_SURGE = "error_surge"  # more errors than the baseline (metrics, logs, traces)
LATENCY = "latency"  # slower than the baseline
SATURATION = "saturation"  # a resource near its limit (CPU, memory, pool, disk)
OOM = "oom"  # out-of-memory kills
CRASHLOOP = "crashloop"  # containers restarting in a loop
ROLLOUT = "rollout"  # a new revision or image of the workload
CONFIG = "config"  # configuration errors (bad config map, missing secret, ...)
SCHEDULING = "scheduling"  # pods that cannot be placed or were evicted
NEW_ERRORS = "new_errors"  # log templates never seen before the incident
DOWNSTREAM_PREFIX = "downstream:"  # "downstream:<service>": errors originate in that service
TRAFFIC = "traffic"  # request volume far above the baseline


@dataclass(frozen=True)
class Finding:
    """One piece of evidence.

    `score` is the analyser's own confidence that this is abnormal, in [0, 1];
    `started_at` is when the anomaly began, if known (the ranking favours the earliest);
    `query` and `link` let a human reproduce it in one click.
    """

    kind: FindingKind
    source: Source
    service: str
    title: str
    score: float
    component: str | None = None
    started_at: datetime | None = None
    query: str | None = None
    link: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    signals: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be within [0, 1], not {self.score}")
