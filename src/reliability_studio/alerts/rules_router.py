"""HTTP layer of `/api/correlation-rules`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from reliability_studio.alerts import rules_service as rules
from reliability_studio.alerts.rule_schemas import (
    CorrelationRuleCreate,
    CorrelationRuleOut,
    CorrelationRuleUpdate,
)
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page
from reliability_studio.api.problems import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/api/correlation-rules", tags=["correlation rules"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CorrelationRuleOut)
async def create_rule(
    body: CorrelationRuleCreate,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
) -> CorrelationRuleOut:
    """Add a rule. Rules are tried by `position`; the first enabled match takes an alert."""
    rule = await rules.create_rule(session, organization_id, body)
    response.headers["Location"] = f"/api/correlation-rules/{rule.id}"
    return rules.rule_out(rule)


@router.get("", response_model=Page[CorrelationRuleOut])
async def list_rules(session: Session, organization_id: OrganizationId) -> Page[CorrelationRuleOut]:
    """Every rule, in the order they are tried (one page: rules are few)."""
    found = await rules.list_rules(session, organization_id)
    return Page(items=[rules.rule_out(rule) for rule in found], next_cursor=None)


@router.get("/{rule_id}", response_model=CorrelationRuleOut)
async def get_rule(
    rule_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> CorrelationRuleOut:
    """One rule."""
    return rules.rule_out(await rules.get_rule(session, organization_id, rule_id))


@router.patch("/{rule_id}", response_model=CorrelationRuleOut)
async def update_rule(
    rule_id: uuid.UUID,
    body: CorrelationRuleUpdate,
    session: Session,
    organization_id: OrganizationId,
) -> CorrelationRuleOut:
    """Change a rule. Live groups keep their key; new alerts follow the new rule."""
    return rules.rule_out(await rules.update_rule(session, organization_id, rule_id, body))


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(
    rule_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> None:
    """Remove a rule. Its live groups close; their incidents stay as they are."""
    await rules.delete_rule(session, organization_id, rule_id)
