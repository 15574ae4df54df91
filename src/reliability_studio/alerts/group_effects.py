"""What a correlation group does to its incident after a pass has routed alerts to it:
open the incident at the threshold, put alerts on the timeline (bounded in a storm),
link newly affected services, raise the severity, reopen, and resolve.

Incidents a human has worked on are left to humans: no automatic severity or status
change once anyone but the engines has written on the timeline or added a task.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.grouping import RuleSpec, is_more_severe
from reliability_studio.alerts.models import Alert, AlertGroup
from reliability_studio.alerts.storm import split_detail, summary_due, summary_title
from reliability_studio.incidents.lifecycle import transition_refusal
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.incidents.schemas import IncidentCreate
from reliability_studio.incidents.service import add_incident, change_status
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


async def apply_group_work(
    session: AsyncSession,
    work: GroupWork,
    incidents: dict[uuid.UUID, Incident],
    settings: Any,
    now: datetime,
) -> None:
    """Apply one group's share of a pass to its incident (uncommitted)."""
    group, rule = work.group, work.rule
    group.updated_at = now
    earlier: list[Alert] = []
    if group.status == "pending" and rule is not None and group.alert_count >= rule.threshold:
        if group.firing_count == 0:
            return  # everything resolved before the threshold was met: nothing to open
        incident = await _open_incident(session, group, rule, work, now)
        incidents[incident.id] = incident
        earlier = await _earlier_alerts(session, group, work, incident)
        opened = True
    elif group.incident_id is not None and group.incident_id in incidents:
        incident = incidents[group.incident_id]
        opened = False
    else:
        return  # pending below threshold, or the incident was deleted

    if not opened:
        await _link_new_services(session, incident, work.firing, now)
    untouched = opened or not await human_has_worked_on(session, incident.id)
    if untouched and not opened and is_more_severe(group.severity, incident.severity):
        _raise_severity(session, incident, group.severity, now)
    if untouched and work.firing and incident.status == "monitoring":
        change_status(session, incident, "investigating", actor=CORRELATION_ACTOR, now=now)

    _record_alert_events(
        session, group, incident, [*earlier, *work.firing], work.resolved, settings, now
    )

    if work.resolved and group.firing_count == 0 and untouched and rule is not None:
        _resolve_by_policy(session, group, incident, rule.resolve_policy, now)


async def human_has_worked_on(session: AsyncSession, incident_id: uuid.UUID) -> bool:
    """Whether anyone but the engines has written on the incident's timeline or tasks."""
    touched = await session.scalar(
        select(
            or_(
                exists().where(
                    TimelineEvent.incident_id == incident_id,
                    TimelineEvent.actor.not_in(ENGINE_ACTORS),
                ),
                exists().where(IncidentTask.incident_id == incident_id),
            )
        )
    )
    return bool(touched)


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


async def _open_incident(
    session: AsyncSession, group: AlertGroup, rule: RuleSpec, work: GroupWork, now: datetime
) -> Incident:
    first = work.firing[0] if work.firing else None
    service_ids = await _group_service_ids(session, group)
    title, description = _incident_text(group, rule, first)
    incident = await add_incident(
        session,
        group.organization_id,
        CORRELATION_ACTOR,
        IncidentCreate(
            title=title,
            description=description,
            severity=group.severity,
            service_ids=service_ids,
        ),
    )
    group.status = "open"
    group.incident_id = incident.id
    await session.execute(
        update(Alert).where(Alert.alert_group_id == group.id).values(incident_id=incident.id)
    )
    if group.previous_incident_id is not None:
        record_event(
            session,
            organization_id=group.organization_id,
            incident_id=incident.id,
            type="related_incident",
            source=CORRELATION_ACTOR,
            title="Continues an earlier incident of the same alerts",
            actor=CORRELATION_ACTOR,
            occurred_at=now,
            metadata={
                "previous_incident_id": str(group.previous_incident_id),
                "group_key": group.group_labels,
                "rule": group.rule_name,
            },
        )
    return incident


async def _group_service_ids(session: AsyncSession, group: AlertGroup) -> list[uuid.UUID]:
    found = await session.scalars(
        select(Alert.service_id)
        .where(Alert.alert_group_id == group.id, Alert.service_id.is_not(None))
        .distinct()
    )
    return [service_id for service_id in found if service_id is not None]


def _incident_text(group: AlertGroup, rule: RuleSpec, first: Alert | None) -> tuple[str, str]:
    labels = group.group_labels
    service = labels.get("service") or (first.service_name if first else None)
    name = first.title if first else labels.get("alertname") or "Alerts firing"
    title = f"{name} ({service})" if service and service not in name else name
    lines = [
        f"Opened by correlation rule {rule.name!r} for "
        + ", ".join(f'{key}="{value}"' for key, value in labels.items())
        + "."
    ]
    if first is not None:
        for key in ("summary", "description"):
            text = first.annotations.get(key)
            if text and text != first.title:
                lines.append(str(text))
        if first.service_name and first.service_id is None:
            lines.append(f"Service {first.service_name!r} is not in the catalog.")
    return title[:500], "\n\n".join(lines)


async def _earlier_alerts(
    session: AsyncSession, group: AlertGroup, work: GroupWork, incident: Incident
) -> list[Alert]:
    """Alerts that waited in the group for the threshold, to go on the new timeline."""
    this_pass = {alert.id for alert in work.firing}
    waiting = await session.scalars(
        select(Alert)
        .where(Alert.alert_group_id == group.id, Alert.id.not_in(this_pass))
        .order_by(Alert.starts_at, Alert.id)
    )
    found = list(waiting)
    for alert in found:
        alert.incident_id = incident.id
    return found


async def _link_new_services(
    session: AsyncSession, incident: Incident, alerts: list[Alert], now: datetime
) -> None:
    wanted = {alert.service_id for alert in alerts if alert.service_id is not None}
    if not wanted:
        return
    linked = set(
        await session.scalars(
            select(IncidentService.service_id).where(IncidentService.incident_id == incident.id)
        )
    )
    added = wanted - linked
    if not added:
        return
    session.add_all(
        IncidentService(
            organization_id=incident.organization_id, incident_id=incident.id, service_id=service_id
        )
        for service_id in added
    )
    names = sorted({a.service_name or "" for a in alerts if a.service_id in added})
    record_event(
        session,
        organization_id=incident.organization_id,
        incident_id=incident.id,
        type="services_changed",
        source=CORRELATION_ACTOR,
        title="Alerts of more services joined: " + ", ".join(names),
        actor=CORRELATION_ACTOR,
        occurred_at=now,
        metadata={"added": names, "removed": []},
    )


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
    session: AsyncSession,
    group: AlertGroup,
    incident: Incident,
    firing: list[Alert],
    resolved: list[Alert],
    settings: Any,
    now: datetime,
) -> None:
    items = [("firing", alert) for alert in firing] + [("resolved", alert) for alert in resolved]
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
        group.status = "closed"
        group.closed_at = now
