"""API tokens and service accounts of an organization."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import ForbiddenError, NotFoundError, UnprocessableError
from reliability_studio.api.queries import commit_unique
from reliability_studio.db.base import utcnow
from reliability_studio.identity.authenticate import Principal
from reliability_studio.identity.models import ApiToken, ServiceAccount
from reliability_studio.identity.roles import at_least
from reliability_studio.identity.schemas import (
    ServiceAccountCreate,
    ServiceAccountOut,
    ServiceAccountUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
)
from reliability_studio.identity.tokens import hash_token, new_token, shown_prefix


async def create_token(
    session: AsyncSession, principal: Principal, data: TokenCreate, max_days: int
) -> TokenCreated:
    """A new token of the caller, or of a service account (admins); its role (by default
    the caller's, or the account's) may not exceed the caller's nor the account's."""
    if data.expires_in_days > max_days:
        raise UnprocessableError(
            f"expires_in_days must be at most {max_days}", field="expires_in_days"
        )
    owner: dict[str, uuid.UUID | None] = {"user_id": None, "service_account_id": None}
    if data.service_account_id is not None:
        if not at_least(principal.role, "admin"):
            raise ForbiddenError("tokens of service accounts are made by admins")
        account = await get_service_account(
            session, principal.organization_id, data.service_account_id
        )
        role = data.role or account.role
        if not at_least(account.role, role):
            raise UnprocessableError(
                f"the account's role is {account.role}; its tokens cannot be {role}",
                field="role",
            )
        owner["service_account_id"] = account.id
    elif principal.kind == "user":
        role = data.role or principal.role
        owner["user_id"] = principal.id
    else:
        raise UnprocessableError(
            "only a person has tokens of their own; name a service_account_id",
            field="service_account_id",
        )
    if not at_least(principal.role, role):
        raise ForbiddenError(f"you cannot hand out the {role} role; you are {principal.role}")
    secret = new_token()
    token = ApiToken(
        organization_id=principal.organization_id,
        name=data.name,
        role=role,
        scope=data.scope,
        token_hash=hash_token(secret),
        prefix=shown_prefix(secret),
        created_by=principal.name,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=data.expires_in_days),
        **owner,
    )
    session.add(token)
    await session.commit()
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


async def list_tokens(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> Page[TokenOut]:
    """The caller's tokens; every token of the organization for admins."""
    query = select(ApiToken).where(ApiToken.organization_id == principal.organization_id)
    if not at_least(principal.role, "admin"):
        query = query.where(ApiToken.user_id == principal.id)
    return await fetch_page(
        session,
        query,
        page,
        sort=ApiToken.created_at,
        row_id=ApiToken.id,
        render=TokenOut.model_validate,
        descending=True,
    )


async def get_token(session: AsyncSession, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    """One token the caller may see (their own; any of the organization for admins), or 404."""
    token = await session.get(ApiToken, token_id)
    visible = token is not None and token.organization_id == principal.organization_id
    if visible and not at_least(principal.role, "admin"):
        visible = token is not None and token.user_id is not None and token.user_id == principal.id
    if not visible or token is None:
        raise NotFoundError(f"token {token_id} not found")
    return token


async def revoke_token(session: AsyncSession, principal: Principal, token_id: uuid.UUID) -> None:
    """Revoke a token at once (idempotent)."""
    token = await get_token(session, principal, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.commit()


async def create_service_account(
    session: AsyncSession, principal: Principal, data: ServiceAccountCreate
) -> ServiceAccount:
    """A new service account; its role may not exceed the caller's. 409 if the name is taken."""
    if not at_least(principal.role, data.role):
        raise ForbiddenError(f"you cannot hand out the {data.role} role")
    account = ServiceAccount(
        organization_id=principal.organization_id, name=data.name, role=data.role
    )
    session.add(account)
    await commit_unique(
        session, f"a service account named {data.name!r} already exists", field="name"
    )
    return account


async def get_service_account(
    session: AsyncSession, organization_id: uuid.UUID, account_id: uuid.UUID
) -> ServiceAccount:
    """A service account of the organization, or 404."""
    account = await session.get(ServiceAccount, account_id)
    if account is None or account.organization_id != organization_id:
        raise NotFoundError(f"service account {account_id} not found")
    return account


async def list_service_accounts(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest
) -> Page[ServiceAccountOut]:
    """Service accounts by name."""
    query = select(ServiceAccount).where(ServiceAccount.organization_id == organization_id)
    return await fetch_page(
        session,
        query,
        page,
        sort=ServiceAccount.name,
        row_id=ServiceAccount.id,
        render=ServiceAccountOut.model_validate,
    )


async def update_service_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID, data: ServiceAccountUpdate
) -> ServiceAccount:
    """Change a service account's role or disable it (its tokens stop working at once)."""
    account = await get_service_account(session, principal.organization_id, account_id)
    changes = patch_changes(data, "role", "disabled")
    if "role" in changes and not at_least(principal.role, changes["role"]):
        raise ForbiddenError(f"you cannot hand out the {changes['role']} role")
    for name, value in changes.items():
        setattr(account, name, value)
    await session.commit()
    return account


async def delete_service_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> None:
    """Delete a service account and its tokens."""
    account = await get_service_account(session, principal.organization_id, account_id)
    await session.delete(account)
    await session.commit()
