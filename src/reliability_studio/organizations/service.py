"""Organizations and their members."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.problems import ConflictError, ForbiddenError, NotFoundError
from reliability_studio.api.queries import commit_unique, flush_unique
from reliability_studio.identity.authenticate import Principal
from reliability_studio.identity.models import Membership, User
from reliability_studio.organizations.models import Organization
from reliability_studio.organizations.schemas import (
    MemberCreate,
    MemberOut,
    OrganizationCreate,
    OrganizationOut,
)


def _out(organization: Organization, role: str) -> OrganizationOut:
    return OrganizationOut(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        role=role,
        created_at=organization.created_at,
        version=organization.version,
    )


async def my_organizations(session: AsyncSession, principal: Principal) -> list[OrganizationOut]:
    """The organizations the caller may act in (a token or an account acts in one)."""
    if principal.kind != "user":
        organization = await session.get(Organization, principal.organization_id)
        return [_out(organization, principal.role)] if organization else []
    rows = await session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == principal.id)
        .order_by(Organization.name)
    )
    return [_out(organization, role) for organization, role in rows]


async def get_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> OrganizationOut:
    """One of the caller's organizations; 404 for any other (its existence stays hidden)."""
    for organization in await my_organizations(session, principal):
        if organization.id == organization_id:
            return organization
    raise NotFoundError(f"organization {organization_id} not found")


async def create_organization(
    session: AsyncSession, principal: Principal, data: OrganizationCreate
) -> OrganizationOut:
    """A new organization, owned by the calling person."""
    if principal.kind != "user" or principal.id is None:
        raise ForbiddenError("organizations are created by people, not by tokens of accounts")
    organization = Organization(name=data.name, slug=data.slug)
    session.add(organization)
    await flush_unique(
        session, f"an organization with slug {data.slug!r} already exists", field="slug"
    )
    session.add(Membership(user_id=principal.id, organization_id=organization.id, role="owner"))
    await session.commit()
    return _out(organization, "owner")


async def rename_organization(
    session: AsyncSession, principal: Principal, name: str | None
) -> OrganizationOut:
    """Rename the caller's current organization."""
    organization = await session.get(Organization, principal.organization_id)
    if organization is None:
        raise NotFoundError("organization not found")
    if name is not None:
        organization.name = name
        await session.commit()
    return _out(organization, principal.role)


async def list_members(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest
) -> Page[MemberOut]:
    """The members, oldest membership first."""
    memberships = await fetch_page(
        session,
        select(Membership).where(Membership.organization_id == organization_id),
        page,
        sort=Membership.created_at,
        row_id=Membership.user_id,
        render=lambda membership: membership,
    )
    users = {
        user.id: user
        for user in await session.scalars(
            select(User).where(User.id.in_([m.user_id for m in memberships.items]))
        )
    }
    return Page(
        items=[_member(m, users[m.user_id]) for m in memberships.items],
        next_cursor=memberships.next_cursor,
    )


def _member(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        name=user.name,
        email=user.email,
        role=membership.role,
        created_at=membership.created_at,
        version=membership.version,
    )


async def add_member(session: AsyncSession, principal: Principal, data: MemberCreate) -> MemberOut:
    """Add a person (found or created by email); only an owner grants the owner role."""
    _may_grant(principal, data.role)
    email = data.email.lower()
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        user = User(name=data.name or email, email=email)
        session.add(user)
        await session.flush()
    elif await session.get(Membership, (user.id, principal.organization_id)) is not None:
        raise ConflictError(f"{email} is already a member")
    membership = Membership(
        user_id=user.id, organization_id=principal.organization_id, role=data.role
    )
    session.add(membership)
    await commit_unique(session, f"{email} is already a member", field="email")
    return _member(membership, user)


async def change_role(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, role: str
) -> MemberOut:
    """Change a member's role; the owner role is given and taken by owners only, and the
    last owner stays one."""
    membership, user = await _membership(session, principal.organization_id, user_id)
    _may_grant(principal, role)
    if membership.role == "owner":
        _may_grant(principal, "owner")
        if role != "owner":
            await _keep_an_owner(session, principal.organization_id)
    membership.role = role
    await session.commit()
    return _member(membership, user)


async def remove_member(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> None:
    """Remove a member (their tokens in this organization stop working at once)."""
    membership, _ = await _membership(session, principal.organization_id, user_id)
    if membership.role == "owner":
        _may_grant(principal, "owner")
        await _keep_an_owner(session, principal.organization_id)
    await session.delete(membership)
    await session.commit()


async def _membership(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Membership, User]:
    membership = await session.get(Membership, (user_id, organization_id))
    user = await session.get(User, user_id)
    if membership is None or user is None:
        raise NotFoundError(f"member {user_id} not found")
    return membership, user


async def _keep_an_owner(session: AsyncSession, organization_id: uuid.UUID) -> None:
    owners = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == organization_id, Membership.role == "owner")
    )
    if (owners or 0) <= 1:
        raise ConflictError("an organization keeps at least one owner")


def _may_grant(principal: Principal, role: str) -> None:
    if role == "owner" and principal.role != "owner":
        raise ForbiddenError("only an owner gives or takes the owner role")
