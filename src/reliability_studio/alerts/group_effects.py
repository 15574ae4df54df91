"""What correlation groups do to their incidents after a pass has routed alerts to them:
open incidents at the threshold, put alerts on the timeline (bounded in a storm), link
newly affected services, raise the severity, reopen, and resolve.

Everything here works on all the groups of a pass at once, with a fixed number of queries
however many groups a storm touches: a pass over 1,000 alerts of 1,000 groups must not
cost thousands of round trips.

Incidents a human has worked on are left to humans: no automatic severity or status
change once anyone but the engines has written on the timeline or added a task.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.grouping import RuleSpec, is_more_severe
from reliability_studio.alerts.models import Alert, AlertGroup
from reliability_studio.alerts.storm import split_detail, summary_due, summary_title
from reliability_studio.catalog.models import Service
from reliability_studio.incidents.lifecycle import transition_refusal
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.incidents.schemas import IncidentCreate
from reliability_studio.incidents.service import add_incidents, change_status
from reliability_studio.notify.delivery import EventType
from reliability_studio.notify.outbox import enqueue_incident_events, incident_event_after_status
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.timeline.models import TimelineEvent
from reliability_studio.timeline.service import record_event

CORRELATION_ACTOR = "alert-correlation"
# Engines write on timelines too; only other actors count as a human at work.
ENGINE_ACTORS = (CORRELATION_ACTOR, "slo-engine")


@dataclass
class GroupWork:
    """The alerts a pass routed to one group."""

    group: AlertGroup
    rule: RuleSpec | None
    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    # Alerts that waited in the group for its threshold; set when the incident opens.
    earlier: list[Alert] = field(default_factory=list)
    opened: bool = False
    # The group this one replaced in this pass (its window or age had passed).
    predecessor: AlertGroup | None = None


async def open_due_incidents(
    session: AsyncSession, works: Sequence[GroupWork], incidents: dict[uuid.UUID, Incident]
) -> None:
    """Open an incident for every group of the pass that has reached its threshold.

    That includes a group that a later alert of the same pass closed (a backlog spanning
    more than one window): its alerts still deserve their incident.
    """
    due = [
        work
        for work in works
        if work.group.incident_id is None
        and work.group.status in ("pending", "closed")
        and work.rule is not None
        and work.group.alert_count >= work.rule.threshold
        and work.group.firing_count > 0
    ]
    if not due:
        return
    await _load_earlier_alerts(session, due)
    services = await _services_of(session, due)
    by_organization: dict[uuid.UUID, list[GroupWork]] = defaultdict(list)
    for work in due:
        by_organization[work.group.organization_id].append(work)
    for organization_id, group_works in by_organization.items():
        items = [_incident_of(work, services) for work in group_works]
        opened = await add_incidents(session, organization_id, CORRELATION_ACTOR, items)
        for work, incident in zip(group_works, opened, strict=True):
            if work.group.status == "pending":
                work.group.status = "open"
            work.group.incident_id = incident.id
            work.opened = True
            incidents[incident.id] = incident
    for work in due:  # once every incident of the pass exists, each can name its predecessor
        predecessor = work.predecessor
        if work.group.previous_incident_id is None and predecessor is not None:
            work.group.previous_incident_id = (
                predecessor.incident_id or predecessor.previous_incident_id
            )
        assert work.group.incident_id is not None
        _note_previous_incident(session, work.group, incidents[work.group.incident_id])
    waited = [work for work in due if work.earlier]
    if waited:
        table = cast(Table, Alert.__table__)  # the Core table: executemany by group id
        await session.execute(
            update(table)
            .where(table.c.alert_group_id == bindparam("group_id"))
            .values(incident_id=bindparam("new_incident_id")),
            [
                {"group_id": work.group.id, "new_incident_id": work.group.incident_id}
                for work in waited
            ],
        )


async def apply_effects(
    session: AsyncSession,
    works: Sequence[GroupWork],
    incidents: dict[uuid.UUID, Incident],
    settings: Any,
    now: datetime,
) -> None:
    """Timeline events, service links, severity, reopening and resolution (uncommitted)."""
    live = [work for work in works if work.group.incident_id in incidents]
    for work in live:
        work.group.updated_at = now
    before = {incident.id: (incident.status, incident.severity) for incident in incidents.values()}
    await _link_new_services(session, live, incidents, now)
    worked_on = await _worked_on_by_humans(session, _needing_the_human_check(live, incidents))
    for work in live:
        assert work.group.incident_id is not None
        incident = incidents[work.group.incident_id]
        untouched = work.opened or incident.id not in worked_on
        _record_alert_events(session, work, incident, settings, now)
        if not untouched:
            continue
        if not work.opened and is_more_severe(work.group.severity, incident.severity):
            _raise_severity(session, incident, work.group.severity, now)
        if work.firing and incident.status == "monitoring":
            change_status(session, incident, "investigating", actor=CORRELATION_ACTOR, now=now)
        if work.resolved and work.group.firing_count == 0 and work.rule is not None:
            _resolve_by_policy(session, work.group, incident, work.rule.resolve_policy, now)
    await _notify_changes(session, incidents, before)


async def _notify_changes(
    session: AsyncSession,
    incidents: dict[uuid.UUID, Incident],
    before: dict[uuid.UUID, tuple[str, str]],
) -> None:
    """Queue notifications for incidents whose status or severity this pass changed."""
    by_organization: dict[uuid.UUID, list[tuple[EventType, Incident]]] = defaultdict(list)
    for incident_id, (status, severity) in before.items():
        incident = incidents[incident_id]
        if incident.status != status:
            event = incident_event_after_status(incident.status)
            by_organization[incident.organization_id].append((event, incident))
        elif incident.severity != severity:
            by_organization[incident.organization_id].append(("incident.updated", incident))
    for organization_id, events in by_organization.items():
        await enqueue_incident_events(session, organization_id, events)


async def flush_summaries(session: AsyncSession, interval: timedelta, now: datetime) -> None:
    """Put counted storm alerts on the timeline of incidents whose summary is due."""
    due = await session.scalars(
        select(AlertGroup).where(
            AlertGroup.unsummarised_firing + AlertGroup.unsummarised_resolved > 0,
            AlertGroup.incident_id.is_not(None),
            or_(AlertGroup.last_summary_at.is_(None), AlertGroup.last_summary_at <= now - interval),
        )
    )
    for group in due:
        assert group.incident_id is not None
        _record_summary(session, group, group.incident_id, now)


async def _load_earlier_alerts(session: AsyncSession, due: Sequence[GroupWork]) -> None:
    """Alerts that joined the groups in earlier passes (threshold above 1), in one query."""
    waited = {work.group.id: work for work in due if work.group.alert_count > len(work.firing)}
    if not waited:
        return
    this_pass = [alert.id for work in waited.values() for alert in work.firing]
    for alert in await session.scalars(
        select(Alert)
        .where(Alert.alert_group_id.in_(waited), Alert.id.not_in(this_pass))
        .order_by(Alert.starts_at, Alert.id)
    ):
        assert alert.alert_group_id is not None
        waited[alert.alert_group_id].earlier.append(alert)


async def _services_of(
    session: AsyncSession, works: Sequence[GroupWork]
) -> dict[uuid.UUID, Service]:
    ids = {
        alert.service_id
        for work in works
        for alert in [*work.earlier, *work.firing]
        if alert.service_id is not None
    }
    if not ids:
        return {}
    return {
        service.id: service
        for service in await session.scalars(select(Service).where(Service.id.in_(ids)))
    }


def _incident_of(
    work: GroupWork, services: dict[uuid.UUID, Service]
) -> tuple[IncidentCreate, list[Service]]:
    assert work.rule is not None
    alerts = [*work.earlier, *work.firing]
    linked = {alert.service_id for alert in alerts if alert.service_id in services}
    title, description = _incident_text(work.group, work.rule, alerts[0])
    data = IncidentCreate(
        title=title,
        description=description,
        severity=work.group.severity,
        service_ids=sorted(linked),
    )
    return data, [services[service_id] for service_id in data.service_ids]


def _incident_text(group: AlertGroup, rule: RuleSpec, first: Alert) -> tuple[str, str]:
    labels = group.group_labels
    service = labels.get("service") or first.service_name
    title = f"{first.title} ({service})" if service and service not in first.title else first.title
    lines = [
        f"Opened by correlation rule {rule.name!r} for "
        + ", ".join(f'{key}="{value}"' for key, value in labels.items())
        + "."
    ]
    for key in ("summary", "description"):
        text = first.annotations.get(key)
        if text and text != first.title:
            lines.append(str(text))
    if first.service_name and first.service_id is None:
        lines.append(f"Service {first.service_name!r} is not in the catalog.")
    return title[:500], "\n\n".join(lines)


def _note_previous_incident(session: AsyncSession, group: AlertGroup, incident: Incident) -> None:
    if group.previous_incident_id is None:
        return
    record_event(
        session,
        organization_id=group.organization_id,
        incident_id=incident.id,
        type="related_incident",
        source=CORRELATION_ACTOR,
        title="Continues an earlier incident of the same alerts",
        actor=CORRELATION_ACTOR,
        occurred_at=incident.created_at,
        metadata={
            "previous_incident_id": str(group.previous_incident_id),
            "group_key": group.group_labels,
            "rule": group.rule_name,
        },
    )


async def _link_new_services(
    session: AsyncSession,
    works: Sequence[GroupWork],
    incidents: dict[uuid.UUID, Incident],
    now: datetime,
) -> None:
    """Link services whose alerts joined an existing incident (when `group_by` spans them)."""
    wanted: dict[uuid.UUID, dict[uuid.UUID, str]] = defaultdict(dict)
    for work in works:
        if work.opened or work.group.incident_id is None:
            continue
        for alert in work.firing:
            if alert.service_id is not None:
                wanted[work.group.incident_id][alert.service_id] = alert.service_name or ""
    if not wanted:
        return
    linked: set[tuple[uuid.UUID, uuid.UUID]] = set(
        (row.incident_id, row.service_id)
        for row in await session.execute(
            select(IncidentService.incident_id, IncidentService.service_id).where(
                IncidentService.incident_id.in_(wanted)
            )
        )
    )
    for incident_id, services in wanted.items():
        added = {sid: name for sid, name in services.items() if (incident_id, sid) not in linked}
        if not added:
            continue
        incident = incidents[incident_id]
        session.add_all(
            IncidentService(
                organization_id=incident.organization_id, incident_id=incident_id, service_id=sid
            )
            for sid in added
        )
        names = sorted(added.values())
        record_event(
            session,
            organization_id=incident.organization_id,
            incident_id=incident_id,
            type="services_changed",
            source=CORRELATION_ACTOR,
            title="Alerts of more services joined: " + ", ".join(names),
            actor=CORRELATION_ACTOR,
            occurred_at=now,
            metadata={"added": names, "removed": []},
        )


def _needing_the_human_check(
    works: Sequence[GroupWork], incidents: dict[uuid.UUID, Incident]
) -> set[uuid.UUID]:
    """Incidents the pass may change by itself, so whether a human worked on them matters."""
    ids = set()
    for work in works:
        if work.opened or work.group.incident_id is None:
            continue
        incident = incidents[work.group.incident_id]
        if (
            is_more_severe(work.group.severity, incident.severity)
            or (work.firing and incident.status == "monitoring")
            or (work.resolved and work.group.firing_count == 0)
        ):
            ids.add(incident.id)
    return ids


async def _worked_on_by_humans(
    session: AsyncSession, incident_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the incidents with a timeline event by a non-engine actor, or a task."""
    ids = set(incident_ids)
    if not ids:
        return set()
    noted = await session.scalars(
        select(TimelineEvent.incident_id)
        .where(TimelineEvent.incident_id.in_(ids), TimelineEvent.actor.not_in(ENGINE_ACTORS))
        .distinct()
    )
    tasked = await session.scalars(
        select(IncidentTask.incident_id).where(IncidentTask.incident_id.in_(ids)).distinct()
    )
    return set(noted) | set(tasked)


def _raise_severity(
    session: AsyncSession, incident: Incident, severity: str, now: datetime
) -> None:
    record_event(
        session,
        organization_id=incident.organization_id,
        incident_id=incident.id,
        type="severity_change",
        source=CORRELATION_ACTOR,
        title=f"Severity changed from {incident.severity} to {severity} by a more severe alert",
        actor=CORRELATION_ACTOR,
        occurred_at=now,
        metadata={"from": incident.severity, "to": severity},
    )
    incident.severity = severity
    incident.updated_at = now


def _record_alert_events(
    session: AsyncSession, work: GroupWork, incident: Incident, settings: Any, now: datetime
) -> None:
    group = work.group
    items = [("firing", alert) for alert in [*work.earlier, *work.firing]] + [
        ("resolved", alert) for alert in work.resolved
    ]
    detailed, counted = split_detail(
        items, detail_used=group.detail_events, limit=settings.detail_limit
    )
    for kind, alert in detailed:
        _record_alert_event(session, incident, alert, kind, now)
    group.detail_events += len(detailed)
    if counted:
        names = Counter({str(k): int(v) for k, v in (group.unsummarised_names or {}).items()})
        names.update(str(alert.labels.get("alertname", alert.title)) for _, alert in counted)
        group.unsummarised_names = dict(names)
        group.unsummarised_firing += sum(1 for kind, _ in counted if kind == "firing")
        group.unsummarised_resolved += sum(1 for kind, _ in counted if kind == "resolved")
    if summary_due(
        pending=group.unsummarised_firing + group.unsummarised_resolved,
        last_summary_at=group.last_summary_at,
        now=now,
        interval=settings.summary_interval,
    ):
        _record_summary(session, group, incident.id, now)


def _record_alert_event(
    session: AsyncSession, incident: Incident, alert: Alert, kind: str, now: datetime
) -> None:
    verb = "Firing" if kind == "firing" else "Resolved"
    record_event(
        session,
        organization_id=incident.organization_id,
        incident_id=incident.id,
        type=f"alert_{kind}",
        source=alert.integration,
        title=f"{verb}: {alert.title}"[:500],
        actor=CORRELATION_ACTOR,
        occurred_at=alert.starts_at if kind == "firing" else (alert.ends_at or now),
        metadata={
            "alert_id": str(alert.id),
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "generator_url": alert.generator_url,
            "starts_at": alert.starts_at.isoformat(),
            "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        },
    )


def _record_summary(
    session: AsyncSession, group: AlertGroup, incident_id: uuid.UUID, now: datetime
) -> None:
    names = Counter({str(k): int(v) for k, v in (group.unsummarised_names or {}).items()})
    record_event(
        session,
        organization_id=group.organization_id,
        incident_id=incident_id,
        type="alert_storm",
        source=CORRELATION_ACTOR,
        title=summary_title(group.unsummarised_firing, group.unsummarised_resolved, names),
        actor=CORRELATION_ACTOR,
        occurred_at=now,
        metadata={
            "firing": group.unsummarised_firing,
            "resolved": group.unsummarised_resolved,
            "alertnames": dict(names.most_common(20)),
            "alert_group_id": str(group.id),
            "alerts_in_group": group.alert_count,
            "firing_in_group": group.firing_count,
        },
    )
    group.unsummarised_firing = 0
    group.unsummarised_resolved = 0
    group.unsummarised_names = {}
    group.last_summary_at = now


def _resolve_by_policy(
    session: AsyncSession, group: AlertGroup, incident: Incident, policy: str, now: datetime
) -> None:
    target = {"monitoring": "monitoring", "resolved": "resolved"}.get(policy)
    if target is None or incident.status == target:
        return
    if transition_refusal(incident.status, target) is not None:  # type: ignore[arg-type]
        return
    change_status(session, incident, target, actor=CORRELATION_ACTOR, now=now)  # type: ignore[arg-type]
    if target == "resolved":
        group.status = "closed"  # the next alert opens a new incident, which names this one
        group.closed_at = now
