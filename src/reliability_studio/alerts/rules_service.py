"""Correlation rule operations, the rules every organization starts with, and their
conversion to the pure `RuleSpec` the correlator applies."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.grouping import RuleSpec
from reliability_studio.alerts.matchers import parse_matcher
from reliability_studio.alerts.models import AlertGroup, CorrelationRule
from reliability_studio.alerts.rule_schemas import (
    CorrelationRuleCreate,
    CorrelationRuleOut,
    CorrelationRuleUpdate,
)
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import NotFoundError
from reliability_studio.api.queries import commit_unique
from reliability_studio.db.base import utcnow

HEARTBEAT_ALERTS = 'alertname=~"Watchdog|InfoInhibitor|DeadMansSwitch"'


def default_rules() -> list[CorrelationRuleCreate]:
    """The rules a new organization starts with: heartbeats never page, and everything
    else groups by service and alert name into one incident per problem."""
    return [
        CorrelationRuleCreate(
            name="heartbeats",
            description="Always-firing heartbeat alerts prove the alerting pipeline works; "
            "they are recorded, never turned into incidents.",
            position=10,
            matchers=[HEARTBEAT_ALERTS],
            action="record_only",
        ),
        CorrelationRuleCreate(
            name="default",
            description="One incident per service and alert name while alerts keep firing "
            "within an hour of each other; moved to monitoring when they have all resolved.",
            position=100,
        ),
    ]


def default_rule_rows(organization_id: uuid.UUID) -> list[dict[str, Any]]:
    """The default rules as table rows (for the migration and for new organizations)."""
    now = utcnow()
    return [
        {
            "id": uuid.uuid4(),
            "organization_id": organization_id,
            "created_at": now,
            "updated_at": now,
            **rule.model_dump(),
        }
        for rule in default_rules()
    ]


async def create_rule(
    session: AsyncSession, organization_id: uuid.UUID, data: CorrelationRuleCreate
) -> CorrelationRule:
    """Add a rule; 409 if the name is taken."""
    rule = CorrelationRule(id=uuid.uuid4(), organization_id=organization_id, **data.model_dump())
    session.add(rule)
    await commit_unique(session, f"a correlation rule named {data.name!r} already exists")
    return rule


async def get_rule(
    session: AsyncSession, organization_id: uuid.UUID, rule_id: uuid.UUID
) -> CorrelationRule:
    """One rule, or 404."""
    rule = await session.scalar(
        select(CorrelationRule).where(
            CorrelationRule.id == rule_id, CorrelationRule.organization_id == organization_id
        )
    )
    if rule is None:
        raise NotFoundError(f"correlation rule {rule_id} does not exist")
    return rule


async def list_rules(session: AsyncSession, organization_id: uuid.UUID) -> list[CorrelationRule]:
    """All rules of the organization in the order they are tried."""
    return list(
        await session.scalars(
            select(CorrelationRule)
            .where(CorrelationRule.organization_id == organization_id)
            .order_by(CorrelationRule.position, CorrelationRule.name)
        )
    )


async def update_rule(
    session: AsyncSession,
    organization_id: uuid.UUID,
    rule_id: uuid.UUID,
    data: CorrelationRuleUpdate,
) -> CorrelationRule:
    """Change a rule. Open groups keep their key; new alerts follow the new rule."""
    required = [field for field in CorrelationRuleUpdate.model_fields if field != "description"]
    changes = patch_changes(data, *required)
    rule = await get_rule(session, organization_id, rule_id)
    for field, value in changes.items():
        setattr(rule, field, value)
    await commit_unique(session, f"a correlation rule named {rule.name!r} already exists")
    return rule


async def delete_rule(
    session: AsyncSession, organization_id: uuid.UUID, rule_id: uuid.UUID
) -> None:
    """Remove a rule. Its live groups close; their incidents stay as they are."""
    rule = await get_rule(session, organization_id, rule_id)
    await session.execute(
        update(AlertGroup)
        .where(AlertGroup.rule_id == rule.id, AlertGroup.status != "closed")
        .values(status="closed", closed_at=utcnow())
    )
    await session.delete(rule)
    await session.commit()


def rule_out(rule: CorrelationRule) -> CorrelationRuleOut:
    """The API shape of a rule."""
    return CorrelationRuleOut.model_validate(rule, from_attributes=True)


def rule_spec(rule: CorrelationRule) -> RuleSpec:
    """The pure form of a stored rule (its matchers were validated when saved)."""
    return RuleSpec(
        id=rule.id,
        name=rule.name,
        matchers=tuple(parse_matcher(text) for text in rule.matchers),
        action=rule.action,
        group_by=tuple(rule.group_by),
        window=timedelta(seconds=rule.window_seconds),
        max_incident_age=timedelta(seconds=rule.max_incident_age_seconds),
        threshold=rule.threshold,
        severity_label=rule.severity_label,
        severity_map=dict(rule.severity_map),
        default_severity=rule.default_severity,  # type: ignore[arg-type]
        resolve_policy=rule.resolve_policy,
    )


async def enabled_rule_specs(session: AsyncSession, organization_id: uuid.UUID) -> list[RuleSpec]:
    """The enabled rules in the order they are tried."""
    return [rule_spec(rule) for rule in await list_rules(session, organization_id) if rule.enabled]
