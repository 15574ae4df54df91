"""Reading alerts and alert groups: one, or filtered lists, newest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.matchers import Matcher
from reliability_studio.alerts.models import Alert, AlertGroup
from reliability_studio.alerts.schemas import AlertGroupOut, AlertOut
from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.problems import NotFoundError

CASE_INSENSITIVE_FLAG = "(?i)"


@dataclass(frozen=True)
class AlertFilters:
    """The filters of `GET /api/alerts`; each one narrows the list further."""

    statuses: list[str] | None = None
    service: str | None = None
    service_id: uuid.UUID | None = None
    unknown_service: bool | None = None
    matchers: list[Matcher] = field(default_factory=list)
    started_after: datetime | None = None
    started_before: datetime | None = None
    incident_id: uuid.UUID | None = None
    fingerprint: str | None = None
    correlated: bool | None = None


async def get_alert(
    session: AsyncSession, organization_id: uuid.UUID, alert_id: uuid.UUID
) -> Alert:
    """One alert, or 404."""
    alert = await session.scalar(
        select(Alert).where(Alert.id == alert_id, Alert.organization_id == organization_id)
    )
    if alert is None:
        raise NotFoundError(f"alert {alert_id} does not exist")
    return alert


async def list_alerts(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest, filters: AlertFilters
) -> Page[AlertOut]:
    """Alerts, newest first (by `starts_at`), filtered."""
    query: Select[Alert] = select(Alert).where(Alert.organization_id == organization_id)
    dialect = session.get_bind().dialect.name
    query = query.where(*_conditions(filters, dialect))
    return await fetch_page(
        session,
        query,
        page,
        sort=Alert.starts_at,
        row_id=Alert.id,
        render=alert_out,
        descending=True,
    )


def _conditions(filters: AlertFilters, dialect: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(Alert.status.in_(filters.statuses))
    if filters.service is not None:
        conditions.append(Alert.service_name == filters.service)
    if filters.service_id is not None:
        conditions.append(Alert.service_id == filters.service_id)
    if filters.unknown_service is True:
        conditions.append(Alert.service_name.is_not(None) & Alert.service_id.is_(None))
    elif filters.unknown_service is False:
        conditions.append(Alert.service_name.is_(None) | Alert.service_id.is_not(None))
    if filters.started_after is not None:
        conditions.append(Alert.starts_at >= filters.started_after)
    if filters.started_before is not None:
        conditions.append(Alert.starts_at < filters.started_before)
    if filters.incident_id is not None:
        conditions.append(Alert.incident_id == filters.incident_id)
    if filters.fingerprint is not None:
        conditions.append(Alert.fingerprint == filters.fingerprint)
    if filters.correlated is not None:
        # Bare column or its negation: what the partial index's predicate can match.
        pending: ColumnElement[bool] = Alert.needs_correlation.expression
        conditions.append(~pending if filters.correlated else pending)
    conditions.extend(label_condition(matcher, dialect) for matcher in filters.matchers)
    return conditions


def label_condition(matcher: Matcher, dialect: str) -> ColumnElement[bool]:
    """SQL for a label matcher, with Prometheus semantics: an absent label is "", and
    regexes match the whole value. SQLite's REGEXP is Python's `re` (registered by
    SQLAlchemy), which reads a leading `(?i)` itself; PostgreSQL's needs it as a flag
    (`~*`) and is otherwise close for the patterns matchers use."""
    value = func.coalesce(Alert.labels[matcher.name].as_string(), "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    pattern, prefix, flags = matcher.value, "", None
    if pattern.startswith(CASE_INSENSITIVE_FLAG):
        pattern = pattern[len(CASE_INSENSITIVE_FLAG) :]
        if dialect == "postgresql":
            flags = "i"
        else:
            prefix = CASE_INSENSITIVE_FLAG  # Python wants global flags first, before "^"
    anchored = f"{prefix}^(?:{pattern})$"
    matched = value.regexp_match(anchored, flags=flags)
    return matched if matcher.op == "=~" else ~matched


async def get_group(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID
) -> AlertGroup:
    """One alert group, or 404."""
    group = await session.scalar(
        select(AlertGroup).where(
            AlertGroup.id == group_id, AlertGroup.organization_id == organization_id
        )
    )
    if group is None:
        raise NotFoundError(f"alert group {group_id} does not exist")
    return group


async def list_groups(
    session: AsyncSession,
    organization_id: uuid.UUID,
    page: PageRequest,
    *,
    statuses: list[str] | None = None,
    incident_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
) -> Page[AlertGroupOut]:
    """Alert groups, newest first."""
    query: Select[AlertGroup] = select(AlertGroup).where(
        AlertGroup.organization_id == organization_id
    )
    if statuses:
        query = query.where(AlertGroup.status.in_(statuses))
    if incident_id is not None:
        query = query.where(AlertGroup.incident_id == incident_id)
    if rule_id is not None:
        query = query.where(AlertGroup.rule_id == rule_id)
    return await fetch_page(
        session,
        query,
        page,
        sort=AlertGroup.created_at,
        row_id=AlertGroup.id,
        render=group_out,
        descending=True,
    )


def alert_out(alert: Alert) -> AlertOut:
    """The API shape of an alert."""
    fields: dict[str, Any] = {
        name: getattr(alert, name) for name in AlertOut.model_fields if name != "correlated"
    }
    fields["correlated"] = not alert.needs_correlation
    return AlertOut.model_validate(fields)


def group_out(group: AlertGroup) -> AlertGroupOut:
    """The API shape of an alert group."""
    return AlertGroupOut.model_validate(group, from_attributes=True)
