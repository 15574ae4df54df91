"""HTTP layer of `/api/organizations`, `/api/organization` and its members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.identity.authenticate import Principal
from reliability_studio.identity.dependencies import current_principal
from reliability_studio.identity.models import Membership
from reliability_studio.organizations import service as organizations
from reliability_studio.organizations.models import Organization
from reliability_studio.organizations.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
)

router = APIRouter(prefix="/api", tags=["organizations"], responses=PROBLEM_RESPONSES)
Caller = Annotated[Principal, Depends(current_principal)]


@router.get("/organizations", response_model=list[OrganizationOut])
async def my_organizations(session: Session, caller: Caller) -> list[OrganizationOut]:
    """The organizations the caller belongs to, with their role in each. A person acts in
    one of them per request: the `X-Organization-ID` header, or their first."""
    return await organizations.my_organizations(session, caller)


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationOut,
    responses=etag_responses(201),
)
async def create_organization(
    body: OrganizationCreate, session: Session, caller: Caller, response: Response
) -> OrganizationOut:
    """A new organization, owned by the caller. Its data is apart from every other's."""
    created = await organizations.create_organization(session, caller, body)
    response.headers["Location"] = f"/api/organizations/{created.id}"
    return with_etag(response, created)


@router.get(
    "/organizations/{organization_id}",
    response_model=OrganizationOut,
    responses=etag_responses(200),
)
async def get_organization(
    organization_id: uuid.UUID, session: Session, caller: Caller, response: Response
) -> OrganizationOut:
    """One of the caller's organizations (404 for any other)."""
    found = await organizations.get_organization(session, caller, organization_id)
    return with_etag(response, found)


@router.get("/organization", response_model=OrganizationOut, responses=etag_responses(200))
async def current_organization(
    session: Session, caller: Caller, response: Response
) -> OrganizationOut:
    """The organization this request acts in."""
    found = await organizations.get_organization(session, caller, caller.organization_id)
    return with_etag(response, found)


@router.patch(
    "/organization",
    response_model=OrganizationOut,
    responses=etag_responses(200, conditional=True),
)
async def rename_organization(
    body: OrganizationUpdate,
    session: Session,
    caller: Caller,
    if_match: IfMatch,
    response: Response,
) -> OrganizationOut:
    """Rename the current organization (owners; 412 for a stale `If-Match`)."""
    await lock_for_write(
        session,
        if_match,
        Organization,
        Organization.id == caller.organization_id,
        what=f"organization {caller.organization_id}",
    )
    renamed = await organizations.rename_organization(session, caller, body.name)
    return with_etag(response, renamed)


@router.get("/organization/members", response_model=Page[MemberOut])
async def list_members(
    session: Session, organization_id: OrganizationId, page: PageParams
) -> Page[MemberOut]:
    """The members of the current organization."""
    return await organizations.list_members(session, organization_id, page)


@router.post(
    "/organization/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    responses=etag_responses(201),
)
async def add_member(
    body: MemberCreate, session: Session, caller: Caller, response: Response
) -> MemberOut:
    """Add a person by email with a role (admins; the owner role only from an owner)."""
    member = await organizations.add_member(session, caller, body)
    response.headers["Location"] = "/api/organization/members"
    return with_etag(response, member)


@router.patch(
    "/organization/members/{user_id}",
    response_model=MemberOut,
    responses=etag_responses(200, conditional=True),
)
async def change_role(
    user_id: uuid.UUID,
    body: MemberUpdate,
    session: Session,
    caller: Caller,
    if_match: IfMatch,
    response: Response,
) -> MemberOut:
    """Change a member's role. The last owner cannot stop being one. 412 for a stale
    `If-Match` (the membership's version, as `version` in the member list shows it)."""
    await _lock_membership(session, if_match, caller, user_id)
    member = await organizations.change_role(session, caller, user_id, body.role)
    return with_etag(response, member)


@router.delete(
    "/organization/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def remove_member(
    user_id: uuid.UUID, session: Session, caller: Caller, if_match: IfMatch
) -> Response:
    """Remove a member; their tokens in this organization stop working at once.
    412 for a stale `If-Match`."""
    await _lock_membership(session, if_match, caller, user_id)
    await organizations.remove_member(session, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _lock_membership(
    session: Session, if_match: IfMatch, caller: Principal, user_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        Membership,
        Membership.user_id == user_id,
        Membership.organization_id == caller.organization_id,
        what=f"membership of {user_id}",
    )
