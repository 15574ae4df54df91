"""Change events as clients of the live stream receive them: shape, coalescing and packing.

Pure logic, no I/O. An event names what changed and carries the few fields a dashboard
redraws from; `href` fetches the whole resource. Every event is a JSON object:

    {"type": "incident.updated", "id": "...", "organization_id": "...",
     "incident_id": "...", "service_ids": ["..."], "data": {...}, "href": "/api/...",
     "at": "2026-11-26T21:40:13.123456+00:00"}

When one transaction changes many resources of one kind (an alert storm), they travel as
one summary instead: `{"type": "alerts.changed", "count": 250, ...}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

# NOTIFY payloads must stay under 8000 bytes; leave room for the channel name and quoting.
MAX_PAYLOAD_BYTES = 7500
# Beyond this many changes of one kind in one transaction, a summary replaces them.
SUMMARY_THRESHOLD = 50
# A summary names at most this many incidents and services; beyond, it goes to everyone.
SUMMARY_MAX_IDS = 100
TEXT_LIMIT = 200

HREFS = {
    "incident": "/api/incidents/{id}",
    "timeline_event": "/api/incidents/{incident_id}/timeline/{id}",
    "task": "/api/incidents/{incident_id}/tasks/{id}",
    "alert": "/api/alerts/{id}",
    "slo": "/api/slos/{id}",
}


@dataclass
class Change:
    """One resource changed by a transaction (before it is sent)."""

    kind: str  # incident, timeline_event, task, alert, slo
    op: str  # created, updated, deleted
    id: str
    organization_id: str
    incident_id: str | None = None
    service_ids: list[str] | None = None  # None: look them up from the incident's links
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """What coalescing merges on: one resource."""
        return (self.kind, self.id)


def short(text: str | None) -> str | None:
    """`text` cut to a length that suits a notification, not a document."""
    if text is None or len(text) <= TEXT_LIMIT:
        return text
    return text[: TEXT_LIMIT - 1] + "…"


def coalesce(changes: Iterable[Change]) -> list[Change]:
    """One change per resource, in first-seen order: the latest data, and `created` or
    `deleted` kept over a later `updated` (a client must learn that it is new, or gone)."""
    merged: dict[tuple[str, str], Change] = {}
    for change in changes:
        earlier = merged.get(change.key)
        if earlier is None:
            merged[change.key] = change
            continue
        op = change.op
        if change.op == "updated" and earlier.op in ("created", "deleted"):
            op = earlier.op
        merged[change.key] = Change(
            kind=change.kind,
            op=op,
            id=change.id,
            organization_id=change.organization_id,
            incident_id=change.incident_id or earlier.incident_id,
            service_ids=earlier.service_ids if change.service_ids is None else change.service_ids,
            data={**earlier.data, **change.data},
        )
    return list(merged.values())


def to_events(changes: Iterable[Change], at: datetime) -> list[dict[str, Any]]:
    """The client events for one committed transaction: one per resource, or one summary per
    kind when a kind has more than SUMMARY_THRESHOLD changes."""
    by_kind: dict[str, list[Change]] = {}
    for change in coalesce(changes):
        by_kind.setdefault(change.kind, []).append(change)
    stamp = at.isoformat()
    events: list[dict[str, Any]] = []
    for kind, group in by_kind.items():
        if len(group) > SUMMARY_THRESHOLD:
            events.append(_summary(kind, group, stamp))
        else:
            events.extend(_event(change, stamp) for change in group)
    return events


def _event(change: Change, stamp: str) -> dict[str, Any]:
    href = HREFS[change.kind].format(id=change.id, incident_id=change.incident_id)
    return {
        "type": f"{change.kind}.{change.op}",
        "id": change.id,
        "organization_id": change.organization_id,
        "incident_id": change.incident_id,
        "service_ids": change.service_ids or [],
        "data": change.data,
        "href": None if change.op == "deleted" else href,
        "at": stamp,
    }


def _summary(kind: str, group: list[Change], stamp: str) -> dict[str, Any]:
    incidents = sorted({change.incident_id for change in group if change.incident_id})
    services = sorted({sid for change in group for sid in change.service_ids or ()})
    return {
        "type": f"{kind}s.changed",
        "count": len(group),
        "organization_id": group[0].organization_id,
        "incident_ids": incidents[:SUMMARY_MAX_IDS],
        "service_ids": services[:SUMMARY_MAX_IDS],
        # Too many to name: every subscriber of the organization gets the summary.
        "everyone": len(incidents) > SUMMARY_MAX_IDS or len(services) > SUMMARY_MAX_IDS,
        "at": stamp,
    }


def pack(events: Iterable[dict[str, Any]], limit: int = MAX_PAYLOAD_BYTES) -> Iterator[bytes]:
    """JSON arrays of `events`, each at most `limit` bytes (an event never is larger: its
    texts are cut short)."""
    batch: list[bytes] = []
    size = 2
    for event in events:
        encoded = orjson.dumps(event)
        if batch and size + len(encoded) + 1 > limit:
            yield b"[" + b",".join(batch) + b"]"
            batch, size = [], 2
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        yield b"[" + b",".join(batch) + b"]"


@dataclass(frozen=True)
class Subscription:
    """What a client asked to see: everything of its organization, or only some incidents
    and services (an event matches when it concerns any of them)."""

    organization_id: str
    incident_ids: frozenset[str] = frozenset()
    service_ids: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        """True when no filter narrows the stream."""
        return not self.incident_ids and not self.service_ids

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether a client with this subscription should receive `event`."""
        if event.get("type") == "resync":
            return True
        if event.get("organization_id") != self.organization_id:
            return False
        if self.everything or event.get("everyone"):
            return True
        incident = event.get("incident_id")
        if incident is not None and incident in self.incident_ids:
            return True
        if self.incident_ids and not self.incident_ids.isdisjoint(event.get("incident_ids", ())):
            return True
        return not self.service_ids.isdisjoint(event.get("service_ids", ()))

    def describe(self) -> dict[str, Any]:
        """The subscription as the `subscribed` message reports it."""
        return {
            "type": "subscribed",
            "incident_ids": sorted(self.incident_ids),
            "service_ids": sorted(self.service_ids),
        }
