"""HTTP layer of `/api/audit`: the audit log, read-only.

Meant for admins: the permission matrix (issue 7) restricts this route to them. The log
itself is written by the session hooks of capture.py, imported here so that every app that
serves this route also records what it is meant to show.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from reliability_studio.api.deps import OrganizationId, Session, reads_only
from reliability_studio.api.fields import NoNul, Timestamp
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.audit import capture  # noqa: F401 - registers the session hooks
from reliability_studio.audit import service as audit
from reliability_studio.audit.schemas import AuditEntryOut

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=PROBLEM_RESPONSES)

Text = Annotated[str, NoNul]


@router.get("", response_model=Page[AuditEntryOut])
@reads_only
async def list_audit_entries(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    actor: Annotated[
        Text | None, Query(max_length=200, description="The actor's name or id.")
    ] = None,
    action: Annotated[
        list[Annotated[str, StringConstraints(max_length=100), NoNul]] | None,
        Query(max_length=20, description="e.g. `incident.updated`; repeat for several."),
    ] = None,
    resource_type: Annotated[
        Text | None, Query(max_length=64, description="e.g. `incident`.")
    ] = None,
    resource_id: Annotated[Text | None, Query(max_length=200)] = None,
    since: Annotated[Timestamp | None, Query(description="At or after this time.")] = None,
    until: Annotated[Timestamp | None, Query(description="Before this time.")] = None,
    request_id: Annotated[
        Text | None, Query(max_length=128, description="The `X-Request-ID` of one request.")
    ] = None,
) -> Page[AuditEntryOut]:
    """Every write made through the API, newest first: who, with which token, what, when,
    in which request, and the values before and after (secrets redacted). For admins."""
    filters = audit.AuditFilters(
        actor=actor,
        actions=list(action) if action else None,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
        request_id=request_id,
    )
    return await audit.list_entries(session, organization_id, page, filters)
