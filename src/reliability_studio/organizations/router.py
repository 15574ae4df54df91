"""HTTP layer of `/api/organizations`, `/api/organization` and its members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.identity.authenticate import Principal
from reliability_studio.identity.dependencies import current_principal
from reliability_studio.organizations import service as organizations
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


@router.post("/organizations", status_code=status.HTTP_201_CREATED, response_model=OrganizationOut)
async def create_organization(
    body: OrganizationCreate, session: Session, caller: Caller, response: Response
) -> OrganizationOut:
    """A new organization, owned by the caller. Its data is apart from every other's."""
    created = await organizations.create_organization(session, caller, body)
    response.headers["Location"] = f"/api/organizations/{created.id}"
    return created


@router.get("/organizations/{organization_id}", response_model=OrganizationOut)
async def get_organization(
    organization_id: uuid.UUID, session: Session, caller: Caller
) -> OrganizationOut:
    """One of the caller's organizations (404 for any other)."""
    return await organizations.get_organization(session, caller, organization_id)


@router.get("/organization", response_model=OrganizationOut)
async def current_organization(session: Session, caller: Caller) -> OrganizationOut:
    """The organization this request acts in."""
    return await organizations.get_organization(session, caller, caller.organization_id)


@router.patch("/organization", response_model=OrganizationOut)
async def rename_organization(
    body: OrganizationUpdate, session: Session, caller: Caller
) -> OrganizationOut:
    """Rename the current organization (owners)."""
    return await organizations.rename_organization(session, caller, body.name)


@router.get("/organization/members", response_model=Page[MemberOut])
async def list_members(
    session: Session, organization_id: OrganizationId, page: PageParams
) -> Page[MemberOut]:
    """The members of the current organization."""
    return await organizations.list_members(session, organization_id, page)


@router.post("/organization/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut)
async def add_member(
    body: MemberCreate, session: Session, caller: Caller, response: Response
) -> MemberOut:
    """Add a person by email with a role (admins; the owner role only from an owner)."""
    member = await organizations.add_member(session, caller, body)
    response.headers["Location"] = "/api/organization/members"
    return member


@router.patch("/organization/members/{user_id}", response_model=MemberOut)
async def change_role(
    user_id: uuid.UUID, body: MemberUpdate, session: Session, caller: Caller
) -> MemberOut:
    """Change a member's role. The last owner cannot stop being one."""
    return await organizations.change_role(session, caller, user_id, body.role)


@router.delete("/organization/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(user_id: uuid.UUID, session: Session, caller: Caller) -> Response:
    """Remove a member; their tokens in this organization stop working at once."""
    await organizations.remove_member(session, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
