"""The incident lifecycle: severities, statuses and the transitions between them.

Pure logic, no I/O. The rules, as documented in the README:

- `open` is where every incident starts. Leaving it for any other status acknowledges it.
- `investigating`, `identified` and `monitoring` are working states; any may follow another.
- `resolved` ends the impact. A resolved incident may be reopened (to `investigating`,
  `identified` or `monitoring`) or closed.
- `closed` is final: no status follows it. (Its text, such as the root cause, can still be
  completed after the review.)
- Nothing returns to `open`: an incident cannot be un-acknowledged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low"]
Status = Literal["open", "investigating", "identified", "monitoring", "resolved", "closed"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
STATUSES: tuple[Status, ...] = (
    "open",
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "closed",
)

_WORKING: frozenset[Status] = frozenset({"investigating", "identified", "monitoring"})

ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    "open": frozenset({"investigating", "identified", "monitoring", "resolved", "closed"}),
    "investigating": frozenset({"identified", "monitoring", "resolved", "closed"}),
    "identified": frozenset({"investigating", "monitoring", "resolved", "closed"}),
    "monitoring": frozenset({"investigating", "identified", "resolved", "closed"}),
    "resolved": _WORKING | {"closed"},
    "closed": frozenset(),
}


def transition_refusal(current: Status, target: Status) -> str | None:
    """Why `current` may not move to `target`, or None when it may (or nothing changes)."""
    if current == target or target in ALLOWED_TRANSITIONS[current]:
        return None
    if current == "closed":
        return "a closed incident is final and cannot change status"
    if target == "open":
        return f"an incident cannot return to 'open' from '{current}'"
    allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current]))
    return f"'{current}' cannot move to '{target}'; allowed: {allowed}"


@dataclass(frozen=True)
class LifecycleTimes:
    """The lifecycle timestamps of an incident."""

    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


def times_after_transition(times: LifecycleTimes, target: Status, now: datetime) -> LifecycleTimes:
    """The lifecycle timestamps once an incident has moved to `target` at `now`.

    Acknowledgement is kept once set. Resolution is cleared when an incident is reopened,
    and a direct close also counts as the resolution when there was none.
    """
    acknowledged_at = times.acknowledged_at or (now if target != "open" else None)
    if target in _WORKING:
        return LifecycleTimes(acknowledged_at, None, None)
    if target == "resolved":
        return LifecycleTimes(acknowledged_at, times.resolved_at or now, None)
    if target == "closed":
        return LifecycleTimes(acknowledged_at, times.resolved_at or now, times.closed_at or now)
    return LifecycleTimes(acknowledged_at, times.resolved_at, times.closed_at)


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    """Seconds (to the millisecond) from `start` to `end`, or None while `end` is unknown."""
    if end is None:
        return None
    return round((end - start).total_seconds(), 3)


def opening_event(severity: str, service_ids: Sequence[uuid.UUID]) -> tuple[str, dict[str, Any]]:
    """The title and metadata of an incident's `incident_created` timeline event, whichever
    path (the ORM's, or PostgreSQL's single statement) writes it."""
    return (
        f"Incident opened with severity {severity}",
        {"severity": severity, "service_ids": [str(service_id) for service_id in service_ids]},
    )
