"""HTTP layer of `/api/correlation-rules`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from reliability_studio.alerts import rules_service as rules
from reliability_studio.alerts.models import CorrelationRule
from reliability_studio.alerts.rule_schemas import (
    CorrelationRuleCreate,
    CorrelationRuleOut,
    CorrelationRuleUpdate,
)
from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page
from reliability_studio.api.problems import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/api/correlation-rules", tags=["correlation rules"], responses=PROBLEM_RESPONSES
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CorrelationRuleOut,
    responses=etag_responses(201),
)
async def create_rule(
    body: CorrelationRuleCreate,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
) -> CorrelationRuleOut:
    """Add a rule. Rules are tried by `position`; the first enabled match takes an alert."""
    rule = await rules.create_rule(session, organization_id, body)
    response.headers["Location"] = f"/api/correlation-rules/{rule.id}"
    return with_etag(response, rules.rule_out(rule))


@router.get("", response_model=Page[CorrelationRuleOut])
async def list_rules(session: Session, organization_id: OrganizationId) -> Page[CorrelationRuleOut]:
    """Every rule, in the order they are tried (one page: rules are few)."""
    found = await rules.list_rules(session, organization_id)
    return Page(items=[rules.rule_out(rule) for rule in found], next_cursor=None)


@router.get("/{rule_id}", response_model=CorrelationRuleOut, responses=etag_responses(200))
async def get_rule(
    rule_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> CorrelationRuleOut:
    """One rule."""
    rule = await rules.get_rule(session, organization_id, rule_id)
    return with_etag(response, rules.rule_out(rule))


@router.patch(
    "/{rule_id}",
    response_model=CorrelationRuleOut,
    responses=etag_responses(200, conditional=True),
)
async def update_rule(
    rule_id: uuid.UUID,
    body: CorrelationRuleUpdate,
    session: Session,
    organization_id: OrganizationId,
    if_match: IfMatch,
    response: Response,
) -> CorrelationRuleOut:
    """Change a rule. Live groups keep their key; new alerts follow the new rule.
    412 for a stale `If-Match`."""
    await _lock(session, if_match, organization_id, rule_id)
    rule = await rules.update_rule(session, organization_id, rule_id, body)
    return with_etag(response, rules.rule_out(rule))


@router.delete(
    "/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_rule(
    rule_id: uuid.UUID, session: Session, organization_id: OrganizationId, if_match: IfMatch
) -> None:
    """Remove a rule. Its live groups close; their incidents stay as they are.
    412 for a stale `If-Match`."""
    await _lock(session, if_match, organization_id, rule_id)
    await rules.delete_rule(session, organization_id, rule_id)


async def _lock(
    session: Session, if_match: IfMatch, organization_id: OrganizationId, rule_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        CorrelationRule,
        CorrelationRule.id == rule_id,
        CorrelationRule.organization_id == organization_id,
        what=f"correlation rule {rule_id}",
    )
