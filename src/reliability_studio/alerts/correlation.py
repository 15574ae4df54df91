"""One correlation pass: claim alerts whose state the correlator has not seen, put firing
ones in their group, and let the groups act on their incidents (see `group_effects.py`).

Everything a pass does, including clearing `needs_correlation`, commits in one
transaction, so a crash mid-pass leaves the alerts pending and the next pass redoes it.
On PostgreSQL an advisory lock lets one pass run at a time across every process (group
creation must not race), and the claimed rows stay locked so that an ingest which
changes one of them waits and then flags it again. SQLite serialises writers anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.group_effects import (
    GroupWork,
    apply_effects,
    flush_summaries,
    open_due_incidents,
)
from reliability_studio.alerts.grouping import (
    RuleSpec,
    alert_severity,
    expiry_reason,
    group_key,
    group_labels,
    most_severe,
    select_rule,
)
from reliability_studio.alerts.models import Alert, AlertGroup, CorrelationRule
from reliability_studio.alerts.rules_service import rule_spec
from reliability_studio.db.base import utcnow
from reliability_studio.incidents.models import Incident

# Any fixed 64-bit number: the advisory lock that makes correlation passes take turns.
CORRELATION_LOCK_KEY = 0x52535F414C455254


@dataclass(frozen=True)
class CorrelationSettings:
    """What a pass needs to know, taken from `Settings`."""

    batch_size: int = 1000
    detail_limit: int = 10
    summary_interval: timedelta = timedelta(seconds=60)


@dataclass
class _Rules:
    """An organization's rules: the enabled ones in order, and every one by id."""

    enabled: list[RuleSpec]
    by_id: dict[uuid.UUID, RuleSpec]


async def correlate_pending(
    session: AsyncSession, settings: CorrelationSettings, now: datetime | None = None
) -> int:
    """Run one pass and commit it; returns how many alerts it took (0: nothing to do)."""
    now = now or utcnow()
    if not await _take_turn(session):
        return 0
    alerts = await _claim(session, settings.batch_size)
    rules = await _rules_of(session, {alert.organization_id for alert in alerts})
    groups, recent_incidents = await _groups_for(session, alerts, rules, now)
    incidents = await _incidents_of(session, groups.values())

    work: dict[uuid.UUID, GroupWork] = {}
    # Routed in alert time, so that a backlog groups as the alerts happened.
    alerts.sort(key=lambda alert: (alert.starts_at, str(alert.id)))
    joined = [
        _route(alert, rules[alert.organization_id], groups, recent_incidents, incidents, work, now)
        for alert in alerts
    ]
    session.add_all(item.group for item in work.values())
    await session.flush()  # new groups exist before alerts point at them
    await open_due_incidents(session, list(work.values()), incidents)
    if alerts:
        await session.execute(
            update(Alert),
            [_settled(alert, group) for alert, group in zip(alerts, joined, strict=True)],
        )
    await apply_effects(session, list(work.values()), incidents, settings, now)
    await flush_summaries(session, settings.summary_interval, now)
    await session.commit()
    return len(alerts)


def _settled(alert: Alert, joined: AlertGroup | None) -> dict[str, Any]:
    """The alert's row once correlated: its group and incident, and no longer pending."""
    return {
        "id": alert.id,
        "needs_correlation": False,
        "correlated_status": alert.status,
        "alert_group_id": joined.id if joined is not None else alert.alert_group_id,
        "incident_id": joined.incident_id if joined is not None else alert.incident_id,
    }


async def _take_turn(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(CORRELATION_LOCK_KEY))))


async def _claim(session: AsyncSession, limit: int) -> list[Alert]:
    query = (
        select(Alert)
        .where(Alert.needs_correlation)
        .order_by(Alert.updated_at, Alert.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))


async def _rules_of(
    session: AsyncSession, organization_ids: set[uuid.UUID]
) -> dict[uuid.UUID, _Rules]:
    found = {org: _Rules(enabled=[], by_id={}) for org in organization_ids}
    if not organization_ids:
        return found
    for rule in await session.scalars(
        select(CorrelationRule)
        .where(CorrelationRule.organization_id.in_(organization_ids))
        .order_by(CorrelationRule.position, CorrelationRule.name)
    ):
        spec = rule_spec(rule)
        found[rule.organization_id].by_id[spec.id] = spec
        if rule.enabled:
            found[rule.organization_id].enabled.append(spec)
    return found


GroupKey = tuple[uuid.UUID, uuid.UUID | None, str]
GroupIndex = dict[GroupKey | uuid.UUID, AlertGroup]
# How far back a new group looks for the incident it follows when no live group had one.
RECENTLY_CLOSED = timedelta(days=7)


async def _groups_for(
    session: AsyncSession, alerts: Sequence[Alert], rules: dict[uuid.UUID, _Rules], now: datetime
) -> tuple[GroupIndex, dict[GroupKey, uuid.UUID]]:
    """The groups the alerts may touch: by id (for resolves) and by live key (for joins);
    and, for keys with no live group, the incident of the last group that closed recently
    (e.g. resolved by its rule's policy), for a new incident to name."""
    ids = {alert.alert_group_id for alert in alerts if alert.alert_group_id is not None}
    keys: set[str] = set()
    for alert in alerts:
        if _is_new_firing(alert):
            rule = select_rule(rules[alert.organization_id].enabled, alert.labels)
            if rule is not None and rule.opens_incidents:
                keys.add(group_key(rule, alert.labels))
    index: GroupIndex = {}
    conditions: list[ColumnElement[bool]] = []
    if ids:
        conditions.append(AlertGroup.id.in_(ids))
    if keys:
        conditions.append(AlertGroup.group_key.in_(keys) & (AlertGroup.status != "closed"))
    for condition in conditions:
        for group in await session.scalars(select(AlertGroup).where(condition)):
            index[group.id] = group
            if group.status != "closed":
                index[(group.organization_id, group.rule_id, group.group_key)] = group
    live_keys = {key[2] for key in index if isinstance(key, tuple)}
    return index, await _recent_incidents(session, keys - live_keys, now)


async def _recent_incidents(
    session: AsyncSession, keys: set[str], now: datetime
) -> dict[GroupKey, uuid.UUID]:
    found: dict[GroupKey, uuid.UUID] = {}
    if not keys:
        return found
    for row in await session.execute(
        select(
            AlertGroup.organization_id,
            AlertGroup.rule_id,
            AlertGroup.group_key,
            AlertGroup.incident_id,
            AlertGroup.previous_incident_id,
        )
        .where(
            AlertGroup.group_key.in_(keys),
            AlertGroup.status == "closed",
            AlertGroup.closed_at >= now - RECENTLY_CLOSED,
        )
        .order_by(AlertGroup.closed_at)
    ):
        incident_id = row.incident_id or row.previous_incident_id
        if incident_id is not None:
            found[(row.organization_id, row.rule_id, row.group_key)] = incident_id
    return found


async def _incidents_of(
    session: AsyncSession, groups: Iterable[AlertGroup]
) -> dict[uuid.UUID, Incident]:
    ids = {group.incident_id for group in groups if group.incident_id is not None}
    if not ids:
        return {}
    # Locked (in id order, as every pass takes them) while the pass decides on them: a
    # responder's PATCH meanwhile waits a moment, instead of making this pass's write
    # fail its version check (`db.base.Versioned`) and the whole pass run again.
    query = (
        select(Incident)
        .where(Incident.id.in_(ids))
        .order_by(Incident.id)
        .with_for_update(key_share=True)
    )
    return {incident.id: incident for incident in await session.scalars(query)}


def _is_new_firing(alert: Alert) -> bool:
    return alert.status == "firing" and alert.correlated_status is None


def _route(
    alert: Alert,
    rules: _Rules,
    groups: GroupIndex,
    recent_incidents: dict[GroupKey, uuid.UUID],
    incidents: dict[uuid.UUID, Incident],
    work: dict[uuid.UUID, GroupWork],
    now: datetime,
) -> AlertGroup | None:
    """Put the alert in its group's work; returns the group a new firing alert joined."""
    if _is_new_firing(alert):
        rule = select_rule(rules.enabled, alert.labels)
        if rule is None or not rule.opens_incidents:
            return None
        group, predecessor = _live_group(alert, rule, groups, recent_incidents, incidents, now)
        _join(group, alert, rule)
        group_work = _work_of(work, group, rule)
        group_work.firing.append(alert)
        group_work.predecessor = group_work.predecessor or predecessor
        return group
    if alert.status == "resolved" and alert.correlated_status == "firing":
        joined = groups.get(alert.alert_group_id) if alert.alert_group_id else None
        if joined is not None:
            joined.firing_count = max(0, joined.firing_count - 1)
            owner = rules.by_id.get(joined.rule_id) if joined.rule_id else None
            _work_of(work, joined, owner).resolved.append(alert)
    return None


def _live_group(
    alert: Alert,
    rule: RuleSpec,
    groups: GroupIndex,
    recent_incidents: dict[GroupKey, uuid.UUID],
    incidents: dict[uuid.UUID, Incident],
    now: datetime,
) -> tuple[AlertGroup, AlertGroup | None]:
    """The group this alert joins: the live one of its key, or a new one (with the group
    it follows, whose incident may only open later in this same pass)."""
    key = group_key(rule, alert.labels)
    index_key = (alert.organization_id, rule.id, key)
    live = groups.get(index_key)
    previous_incident_id = recent_incidents.get(index_key)
    if live is not None:
        group = live
        incident = incidents.get(group.incident_id) if group.incident_id else None
        reason = expiry_reason(
            rule,
            last_alert_at=group.last_alert_at,
            alert_started_at=alert.starts_at,
            incident_opened_at=incident.created_at if incident else None,
            incident_status=incident.status if incident else None,
            now=now,
        )
        if reason is None:
            return group, None
        group.status = "closed"
        group.closed_at = now
        previous_incident_id = group.incident_id or group.previous_incident_id
    group = AlertGroup(
        id=uuid.uuid4(),
        organization_id=alert.organization_id,
        rule_id=rule.id,
        rule_name=rule.name,
        group_key=key,
        group_labels=group_labels(rule, alert.labels),
        status="pending",
        previous_incident_id=previous_incident_id,
        severity=alert_severity(rule, alert.labels),
        first_alert_at=alert.starts_at,
        last_alert_at=alert.starts_at,
        alert_count=0,
        firing_count=0,
        detail_events=0,
        unsummarised_firing=0,
        unsummarised_resolved=0,
        unsummarised_names={},
        created_at=now,
        updated_at=now,
    )
    groups[index_key] = group
    groups[group.id] = group
    return group, live


def _join(group: AlertGroup, alert: Alert, rule: RuleSpec) -> None:
    group.alert_count += 1
    group.firing_count += 1
    group.last_alert_at = max(group.last_alert_at, alert.starts_at)
    group.severity = most_severe(group.severity, alert_severity(rule, alert.labels))  # type: ignore[arg-type]


def _work_of(
    work: dict[uuid.UUID, GroupWork], group: AlertGroup, rule: RuleSpec | None
) -> GroupWork:
    if group.id not in work:
        work[group.id] = GroupWork(group=group, rule=rule)
    return work[group.id]
