"""HTTP layer of the exported Prometheus rules: one SLO's, or every SLO's (see rules.py)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.problems import PROBLEM_RESPONSES, ConflictError
from reliability_studio.catalog.models import Service
from reliability_studio.slos import service as slos
from reliability_studio.slos.models import SLO
from reliability_studio.slos.rules import RuleSLO, prometheus_rules_yaml

YAML_MEDIA_TYPE = "application/yaml"
_YAML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A Prometheus rule file (`rule_files`), accepted by `promtool check rules`.",
        # The schema of a YAML body describes the parsed document (as for JSON), not its
        # text: `type: string` made every rule file a schema violation to clients that parse.
        "content": {
            YAML_MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["groups"],
                    "properties": {
                        "groups": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}

router = APIRouter(tags=["slos"], responses=PROBLEM_RESPONSES)


async def load_rule_slos(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    service_id: uuid.UUID | None = None,
) -> list[RuleSLO]:
    """Every SLO with an SLI (optionally of one service), by service name then SLO name."""
    query = (
        select(SLO, Service.name)
        .join(Service, Service.id == SLO.service_id)
        .where(SLO.organization_id == organization_id)
        .order_by(Service.name, SLO.name, SLO.id)
    )
    if service_id is not None:
        query = query.where(SLO.service_id == service_id)
    rows = (await session.execute(query)).all()
    # Filtered here, not in SQL: a JSON column may hold JSON `null` rather than SQL NULL.
    return [RuleSLO.from_model(slo, name) for slo, name in rows if slo.sli is not None]


def _yaml(text: str) -> Response:
    return Response(content=text, media_type=YAML_MEDIA_TYPE)


@router.get(
    "/api/slos/{slo_id}/prometheus-rules",
    response_class=Response,
    responses=_YAML_RESPONSE,
)
async def slo_prometheus_rules(
    slo_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> Response:
    """Prometheus recording and alerting rules (Sloth's names) for one SLO.

    404 if the SLO does not exist; 409 if it is manual (it has no SLI to compute).
    """
    slo = await slos.get_slo(session, organization_id, slo_id)
    if slo.sli is None:
        raise ConflictError(
            f"SLO {slo_id} is manual (it has no sli), so it has no Prometheus rules; "
            "give it an sli first"
        )
    service_name = await session.scalar(select(Service.name).where(Service.id == slo.service_id))
    assert service_name is not None  # the foreign key guarantees it
    return _yaml(prometheus_rules_yaml([RuleSLO.from_model(slo, service_name)]))


@router.get("/api/prometheus-rules", response_class=Response, responses=_YAML_RESPONSE)
async def all_prometheus_rules(
    session: Session, organization_id: OrganizationId, service_id: uuid.UUID | None = None
) -> Response:
    """Prometheus rules for every SLO that has an SLI, or only those of `service_id`.

    Manual SLOs are left out. Load the file with `rule_files` in prometheus.yml.
    """
    rule_slos = await load_rule_slos(session, organization_id, service_id=service_id)
    return _yaml(prometheus_rules_yaml(rule_slos))
