"""Kubernetes as evidence: warning events, broken pods and recent rollouts of one workload.

Pure functions over what `telemetry.kubernetes.KubernetesClient` read. Three kinds of evidence,
each a finding with the `kubectl` command that shows the same thing:

- warning events about the workload's objects, one finding per reason (`k8s_event`);
- its pods that crash-loop, were OOM-killed, cannot start for a configuration error or were
  evicted, as one finding (`k8s_event`): one OOM kill usually also means a crash loop, and two
  findings would count the same trouble twice;
- its rollouts since the window's start, one finding each (`deploy`).

Objects belong to the workload by name, as a Deployment names them: the Deployment itself
(`checkout`), its ReplicaSets (`checkout-7d9f8b6c4d`) and their pods
(`checkout-7d9f8b6c4d-x2k9q`), plus the `-<ordinal>` of a StatefulSet and the `-<5 chars>` of a
DaemonSet or Job. The random parts use Kubernetes' alphabet, which has no vowels, so that
`checkout-worker-...` is not taken for a pod of `checkout`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reliability_studio.analysis.findings import (
    CONFIG,
    CRASHLOOP,
    ERROR_SURGE,
    LATENCY,
    OOM,
    ROLLOUT,
    SCHEDULING,
    Finding,
)
from reliability_studio.telemetry.kubernetes import (
    ContainerStatus,
    K8sEvent,
    PodStatus,
    Rollout,
    Termination,
)

WATCHED_REASONS = frozenset(
    {
        "BackOff",  # a container restarting in a loop (or an image that cannot be pulled)
        "OOMKilling",  # the kernel killed a process for memory (node-problem-detector)
        "FailedScheduling",  # no node fits the pod
        "Unhealthy",  # liveness or readiness probe failures
        "Evicted",  # the kubelet evicted the pod (node pressure)
        # Additions: each one stops pods from running, and the list would miss them.
        "FailedMount",  # a volume (often a ConfigMap or Secret) cannot be mounted
        "FailedCreatePodSandBox",  # the node cannot create the pod's sandbox (CNI, runtime)
        "Failed",  # the kubelet could not start a container: config errors, image pulls
    }
)
"""Warning reasons that are evidence; the others (e.g. `FailedGetScale`) are left out."""

ROLLOUT_LEAD = timedelta(minutes=30)
"""A rollout this long before the incident began (or less) is a likely cause."""

MAX_OBJECTS = 5
"""Object names listed in a finding's figures."""

MESSAGE_LIMIT = 160
"""A message quoted in a title is cut here."""

# Kubernetes' random suffixes (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1, 3).
_RANDOM = "[bcdfghjklmnpqrstvwxz2456789]"
_OWNED_SUFFIX = re.compile(rf"(?:{_RANDOM}{{1,10}}(?:-{_RANDOM}{{5}})?|\d+)")

_CONFIG_MESSAGE = re.compile(
    r"CreateContainerConfigError|CreateContainerError|couldn't find key"
    r"|configmaps? \"?[^\"\s]*\"? not found|secrets? \"?[^\"\s]*\"? not found"
    r"|InvalidImageName|ErrImagePull|ImagePullBackOff|Failed to pull image|pulling image",
    re.IGNORECASE,
)
_PULL_MESSAGE = re.compile(r"pull(?:ing)? image|ImagePullBackOff|ErrImagePull", re.IGNORECASE)
_TIMEOUT_MESSAGE = re.compile(r"timeout|timed out|deadline exceeded", re.IGNORECASE)
_CONFIG_WAITING = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "ErrImagePull",
        "ImagePullBackOff",
    }
)
_OOM_EXIT_CODE = 137

# Base scores per reason, before the count adds up to 0.2 (see `_event_score`).
_REASON_SCORES = {
    "OOMKilling": 0.8,
    "BackOff": 0.7,
    "Evicted": 0.6,
    "FailedScheduling": 0.6,
    "FailedMount": 0.6,
    "Failed": 0.6,
    "FailedCreatePodSandBox": 0.5,
    "Unhealthy": 0.5,
}
_CONFIG_SCORE = 0.8


def kube_findings(
    service: str,
    namespace: str,
    workload: str | None,
    *,
    events: Sequence[K8sEvent],
    pods: Sequence[PodStatus],
    rollouts: Sequence[Rollout],
    since: datetime,
    incident_start: datetime | None = None,
) -> list[Finding]:
    """The workload's warning events, broken pods and rollouts since `since`, as findings.

    `workload` is the Deployment's name (the service's name when None). Events and pods are
    matched to it by name; rollouts by their Deployment when `workload` is given (the client
    lists one Deployment's rollouts, so all are kept when it is not). Events last seen, and
    rollouts made, before `since` are history, not evidence. `incident_start` (default `since`)
    is what a rollout's timing is scored against. Naive datetimes are UTC.
    """
    name = workload or service
    since = _aware(since)
    start = _aware(incident_start) if incident_start is not None else since
    findings = _event_findings(service, namespace, name, events, since)
    pod_finding = _pod_finding(service, namespace, name, pods, since)
    if pod_finding is not None:
        findings.append(pod_finding)
    for rollout in rollouts:
        if workload is not None and rollout.deployment != workload:
            continue
        if rollout.time is None or _aware(rollout.time) < since:
            continue
        findings.append(_rollout_finding(service, namespace, rollout, start))
    return findings


def belongs_to(object_name: str, workload: str) -> bool:
    """Whether `object_name` is the workload or one of its ReplicaSets or pods (see above)."""
    if object_name == workload:
        return True
    prefix = workload + "-"
    return object_name.startswith(prefix) and bool(
        _OWNED_SUFFIX.fullmatch(object_name[len(prefix) :])
    )


# --- events ------------------------------------------------------------------------------------


@dataclass
class _Reason:
    """The events of one reason, added up."""

    reason: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    latest: K8sEvent | None = None
    objects: list[str] = field(default_factory=list)
    signals: set[str] = field(default_factory=set)


def event_signals(event: K8sEvent) -> set[str]:
    """What one warning event suggests.

    BackOff is a crash loop, unless it is an image pull backing off (a configuration error);
    OOMKilling is OOM; FailedScheduling, Evicted and FailedCreatePodSandBox are scheduling (the
    pod cannot be placed or kept on a node). Unhealthy is ERROR_SURGE, as a failing probe is the
    app answering errors or refusing connections, and LATENCY when the probe timed out, as the
    app was too slow to answer. FailedMount is CONFIG (a missing ConfigMap, Secret or claim), and
    so is any message naming a configuration error (`CreateContainerConfigError`, `couldn't find
    key`, `configmap "x" not found`, `secret "x" not found`, an image that cannot be pulled).
    A plain `Failed` (the container could not start) is a crash loop in the making.
    """
    signals: set[str] = set()
    config = bool(_CONFIG_MESSAGE.search(event.message))
    if config:
        signals.add(CONFIG)
    reason = event.reason
    if reason == "BackOff" and not _PULL_MESSAGE.search(event.message):
        signals.add(CRASHLOOP)
    elif reason == "OOMKilling":
        signals.add(OOM)
    elif reason in ("FailedScheduling", "Evicted", "FailedCreatePodSandBox"):
        signals.add(SCHEDULING)
    elif reason == "Unhealthy":
        signals.add(LATENCY if _TIMEOUT_MESSAGE.search(event.message) else ERROR_SURGE)
    elif reason == "FailedMount":
        signals.add(CONFIG)
    elif reason == "Failed" and not config:
        signals.add(CRASHLOOP)
    return signals


def _involves(event: K8sEvent, namespace: str, workload: str) -> bool:
    """An event about the workload's objects; a node's OOMKilling when it names the workload
    (node-problem-detector reports kills on the node, naming the pod in the message)."""
    if event.involved_namespace and event.involved_namespace != namespace:
        return event.involved_kind == "Node" and _names_workload(event.message, workload)
    if event.involved_kind == "Node":
        return _names_workload(event.message, workload)
    return belongs_to(event.involved_name, workload)


def _names_workload(message: str, workload: str) -> bool:
    return any(belongs_to(word, workload) for word in re.findall(r"[a-z0-9][a-z0-9.-]*", message))


def _event_findings(
    service: str, namespace: str, workload: str, events: Iterable[K8sEvent], since: datetime
) -> list[Finding]:
    reasons: dict[str, _Reason] = {}
    for event in events:
        if not event.warning or event.reason not in WATCHED_REASONS:
            continue
        if event.last_seen is not None and _aware(event.last_seen) < since:
            continue
        if not _involves(event, namespace, workload):
            continue
        total = reasons.setdefault(event.reason, _Reason(event.reason))
        total.count += max(1, event.count)
        total.first_seen = _earliest(total.first_seen, event.first_seen)
        total.last_seen = _latest(total.last_seen, event.last_seen)
        if total.latest is None or _key(event.last_seen) >= _key(total.latest.last_seen):
            total.latest = event
        if event.involved_name not in total.objects:
            total.objects.append(event.involved_name)
        total.signals |= event_signals(event)
    findings = [_event_finding(service, namespace, workload, r) for r in reasons.values()]
    return sorted(findings, key=lambda f: (-f.score, f.title))


def _event_finding(service: str, namespace: str, workload: str, total: _Reason) -> Finding:
    latest = total.latest
    message = latest.message if latest is not None else ""
    objects = len(total.objects)
    title = (
        f"{total.count} {total.reason} warning{'s' if total.count != 1 else ''} for {workload}"
        f" ({objects} object{'s' if objects != 1 else ''}"
        f"{_span_text(total.first_seen, total.last_seen)}): {_cut(message)}"
    )
    figures: dict[str, Any] = {
        "reason": total.reason,
        "count": total.count,
        "objects": total.objects[:MAX_OBJECTS],
        "object_count": objects,
        "first_seen": _iso(total.first_seen),
        "last_seen": _iso(total.last_seen),
        "message": message,
        "source": latest.source if latest is not None else "",
    }
    return Finding(
        kind="k8s_event",
        source="kubernetes",
        service=service,
        title=title,
        score=_event_score(total),
        component=total.objects[0] if objects == 1 else None,
        started_at=total.first_seen,
        query=_events_query(namespace, workload, total),
        figures=figures,
        signals=frozenset(total.signals),
    )


def _event_score(total: _Reason) -> float:
    """The reason's base score (0.8 for a configuration error), plus 0.05 per doubling of the
    count, at most 0.95: a hundred back-offs say more than one."""
    base = _REASON_SCORES.get(total.reason, 0.5)
    if CONFIG in total.signals:
        base = max(base, _CONFIG_SCORE)
    return round(min(0.95, base + 0.05 * math.log2(max(1, total.count))), 3)


def _events_query(namespace: str, workload: str, total: _Reason) -> str:
    selector = f"type=Warning,reason={total.reason}"
    if len(total.objects) == 1 and total.latest is not None:
        selector += f",involvedObject.name={total.objects[0]}"
        return f"kubectl -n {namespace} get events --field-selector {selector}"
    return f"kubectl -n {namespace} get events --field-selector {selector} | grep {workload}"


# --- pods --------------------------------------------------------------------------------------


@dataclass
class _PodTrouble:
    pod: PodStatus
    oom: list[ContainerStatus] = field(default_factory=list)
    crash_looping: list[ContainerStatus] = field(default_factory=list)
    config: list[ContainerStatus] = field(default_factory=list)


def _pod_finding(
    service: str, namespace: str, workload: str, pods: Iterable[PodStatus], since: datetime
) -> Finding | None:
    """The workload's pods in trouble, as one finding (None when all are well).

    OOM: a container whose current or last termination is `OOMKilled` (exit 137), finished
    since `since` (an old kill that the pod recovered from is history). A bare exit 137 is any
    SIGKILL (a failed liveness probe too), so it is not taken for OOM. Crash loop: waiting in
    `CrashLoopBackOff`. Config: waiting in `CreateContainerConfigError`, an image pull error and
    the like. Evicted: the pod failed with reason `Evicted`.
    Score: 0.9 for OOM or a crash loop, 0.85 for a configuration error, 0.6 for evictions only.
    `started_at` is the earliest termination known: Kubernetes keeps only the last one per
    container, and no time for a waiting state.
    """
    troubles: list[_PodTrouble] = []
    evicted: list[PodStatus] = []
    for pod in pods:
        if not belongs_to(pod.name, workload):
            continue
        if pod.evicted:
            evicted.append(pod)
            continue
        trouble = _PodTrouble(pod)
        for container in pod.containers:
            if any(_oom_since(t, since) for t in (container.terminated, container.last_terminated)):
                trouble.oom.append(container)
            if container.crash_looping:
                trouble.crash_looping.append(container)
            if container.waiting_reason in _CONFIG_WAITING:
                trouble.config.append(container)
        if trouble.oom or trouble.crash_looping or trouble.config:
            troubles.append(trouble)
    if not troubles and not evicted:
        return None

    oom = [t for t in troubles if t.oom]
    looping = [t for t in troubles if t.crash_looping]
    config = [t for t in troubles if t.config]
    restarts = sum(t.pod.restarts for t in troubles)
    parts: list[str] = []
    signals: set[str] = set()
    score = 0.0
    if oom:
        parts.append(f"{len(oom)} OOMKilled (exit {_OOM_EXIT_CODE})")
        signals.add(OOM)
        score = max(score, 0.9)
    if looping:
        parts.append(f"{len(looping)} in CrashLoopBackOff")
        signals.add(CRASHLOOP)
        score = max(score, 0.9)
    if config:
        reasons = sorted({c.waiting_reason or "" for t in config for c in t.config})
        parts.append(f"{len(config)} in {'/'.join(reasons)}")
        signals.add(CONFIG)
        score = max(score, 0.85)
    if evicted:
        parts.append(f"{len(evicted)} evicted")
        signals.add(SCHEDULING)
        score = max(score, 0.6)
    title = f"{workload} pods: {', '.join(parts)}; {restarts} restarts"

    terminations = [
        t
        for trouble in troubles
        for c in trouble.pod.containers
        for t in (c.terminated, c.last_terminated)
        if t is not None and t.finished_at is not None
    ]
    started = min((_aware(t.finished_at) for t in terminations if t.finished_at), default=None)
    names = [t.pod.name for t in troubles] + [p.name for p in evicted]
    figures: dict[str, Any] = {
        "restarts": restarts,
        "oom_killed": len(oom),
        "crash_looping": len(looping),
        "config_errors": len(config),
        "evicted": len(evicted),
        "pods": [_pod_figures(t.pod) for t in troubles][:MAX_OBJECTS]
        + [
            {"name": p.name, "phase": p.phase, "reason": p.reason, "message": p.message}
            for p in evicted
        ][: max(0, MAX_OBJECTS - len(troubles))],
    }
    return Finding(
        kind="k8s_event",
        source="kubernetes",
        service=service,
        title=title,
        score=score,
        component=names[0] if len(names) == 1 else None,
        started_at=started,
        query=f"kubectl -n {namespace} get pods {' '.join(names[:MAX_OBJECTS])} -o wide",
        figures=figures,
        signals=frozenset(signals),
    )


def _oom_since(termination: Termination | None, since: datetime) -> bool:
    if termination is None or termination.reason != "OOMKilled":
        return False
    return termination.finished_at is None or _aware(termination.finished_at) >= since


def _pod_figures(pod: PodStatus) -> dict[str, Any]:
    return {
        "name": pod.name,
        "phase": pod.phase,
        "node": pod.node_name,
        "restarts": pod.restarts,
        "containers": [
            {
                "name": c.name,
                "restarts": c.restart_count,
                "waiting_reason": c.waiting_reason,
                "last_reason": c.last_terminated.reason if c.last_terminated else None,
                "last_exit_code": c.last_terminated.exit_code if c.last_terminated else None,
                "last_finished_at": _iso(c.last_terminated.finished_at)
                if c.last_terminated
                else None,
            }
            for c in pod.containers
        ],
    }


# --- rollouts ----------------------------------------------------------------------------------


def _rollout_finding(
    service: str, namespace: str, rollout: Rollout, incident_start: datetime
) -> Finding:
    """One rollout. Score: 0.8 when it came up to ROLLOUT_LEAD before the incident began, 0.5
    otherwise (long before, or during it); 0.3 for a rollback, which is usually the remedy."""
    when = _aware(rollout.time) if rollout.time is not None else None
    verb = "rolled back to" if rollout.rollback else "rolled out"
    title = f"{rollout.deployment} {verb} revision {rollout.revision}{_image_text(rollout)}"
    if when is not None:
        title += f" at {when.astimezone(UTC):%H:%M} UTC"
    if rollout.rollback:
        score = 0.3
    elif when is not None and incident_start - ROLLOUT_LEAD <= when <= incident_start:
        score = 0.8
    else:
        score = 0.5
    changed = rollout.changed_images if rollout.previous_images is not None else {}
    figures: dict[str, Any] = {
        "deployment": rollout.deployment,
        "revision": rollout.revision,
        "replica_set": rollout.replica_set,
        "images": dict(rollout.images),
        "previous_images": dict(rollout.previous_images)
        if rollout.previous_images is not None
        else None,
        "changed_images": {name: list(pair) for name, pair in changed.items()},
        "rollback": rollout.rollback,
        "change_cause": rollout.change_cause,
        "time": _iso(when),
    }
    return Finding(
        kind="deploy",
        source="kubernetes",
        service=service,
        title=title,
        score=score,
        component=rollout.deployment,
        started_at=when,
        query=(
            f"kubectl -n {namespace} rollout history deployment/{rollout.deployment}"
            f" --revision={rollout.revision}"
        ),
        figures=figures,
        signals=frozenset({ROLLOUT}),
    )


def _image_text(rollout: Rollout) -> str:
    """`: image a:1 → a:2` for one changed container, `: images app a:1 → a:2, ...` for more."""
    if rollout.previous_images is None:
        images = ", ".join(rollout.images.values())
        return f": image {images} (previous revision unknown)" if images else ""
    changed = rollout.changed_images
    if not changed:
        return " (no image change)"
    if len(changed) == 1:
        before, after = next(iter(changed.values()))
        return f": image {before or 'none'} → {after or 'none'}"
    pairs = ", ".join(
        f"{name} {before or 'none'} → {after or 'none'}"
        for name, (before, after) in changed.items()
    )
    return f": images {pairs}"


# --- helpers -----------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _key(moment: datetime | None) -> datetime:
    return _aware(moment) if moment is not None else datetime.min.replace(tzinfo=UTC)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    known = [_aware(m) for m in (a, b) if m is not None]
    return min(known, default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    known = [_aware(m) for m in (a, b) if m is not None]
    return max(known, default=None)


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment is not None else None


def _span_text(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return ""
    return f", {first.astimezone(UTC):%H:%M}-{last.astimezone(UTC):%H:%M} UTC"


def _cut(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."
