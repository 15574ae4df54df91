"""HTTP layer of `/api/me`, `/api/tokens` and `/api/service-accounts`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.identity import service as identity
from reliability_studio.identity.authenticate import Principal, describe
from reliability_studio.identity.dependencies import current_principal
from reliability_studio.identity.models import ApiToken, ServiceAccount
from reliability_studio.identity.schemas import (
    MeOut,
    ServiceAccountCreate,
    ServiceAccountOut,
    ServiceAccountUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
)

router = APIRouter(prefix="/api", tags=["identity"], responses=PROBLEM_RESPONSES)
Caller = Annotated[Principal, Depends(current_principal)]


@router.get("/me", response_model=MeOut)
async def me(caller: Caller) -> MeOut:
    """Who the server takes the caller to be, in which organization, with which role."""
    return MeOut.model_validate(describe(caller))


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=etag_responses(201),
)
async def create_token(
    body: TokenCreate, session: Session, caller: Caller, request: Request, response: Response
) -> TokenCreated:
    """A new API token, shown once in `token`: store it now, it cannot be read again.

    Stored hashed; its role never exceeds the caller's (nor, for a personal token, its
    owner's role at the time of each use). Send it as `Authorization: Bearer <token>`."""
    created = await identity.create_token(
        session, caller, body, request.app.state.settings.token_max_days
    )
    response.headers["Location"] = f"/api/tokens/{created.id}"
    response.headers["Cache-Control"] = "no-store"
    return with_etag(response, created)


@router.get("/tokens", response_model=Page[TokenOut])
async def list_tokens(session: Session, caller: Caller, page: PageParams) -> Page[TokenOut]:
    """The caller's tokens (every token of the organization for admins), newest first."""
    return await identity.list_tokens(session, caller, page)


@router.get("/tokens/{token_id}", response_model=TokenOut, responses=etag_responses(200))
async def get_token(
    token_id: uuid.UUID, session: Session, caller: Caller, response: Response
) -> TokenOut:
    """One token (never its secret). Its version moves when it is revoked, not when it is
    used (`last_used_at` is bookkeeping)."""
    token = await identity.get_token(session, caller, token_id)
    return with_etag(response, TokenOut.model_validate(token))


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def revoke_token(
    token_id: uuid.UUID, session: Session, caller: Caller, if_match: IfMatch
) -> Response:
    """Revoke a token: it stops working at once. The caller's own, or any (admins).
    412 for a stale `If-Match`."""
    await identity.get_token(session, caller, token_id)  # 404 for one the caller may not see
    await lock_for_write(
        session,
        if_match,
        ApiToken,
        ApiToken.id == token_id,
        ApiToken.organization_id == caller.organization_id,
        what=f"token {token_id}",
    )
    await identity.revoke_token(session, caller, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/service-accounts",
    status_code=status.HTTP_201_CREATED,
    response_model=ServiceAccountOut,
    responses=etag_responses(201),
)
async def create_service_account(
    body: ServiceAccountCreate, session: Session, caller: Caller, response: Response
) -> ServiceAccountOut:
    """A machine identity (CI, scripts, an integration); give it tokens with
    `POST /api/tokens` and `service_account_id`."""
    account = await identity.create_service_account(session, caller, body)
    response.headers["Location"] = f"/api/service-accounts/{account.id}"
    return with_etag(response, ServiceAccountOut.model_validate(account))


@router.get("/service-accounts", response_model=Page[ServiceAccountOut])
async def list_service_accounts(
    session: Session, organization_id: OrganizationId, page: PageParams
) -> Page[ServiceAccountOut]:
    """The organization's service accounts, by name."""
    return await identity.list_service_accounts(session, organization_id, page)


@router.get(
    "/service-accounts/{account_id}",
    response_model=ServiceAccountOut,
    responses=etag_responses(200),
)
async def get_service_account(
    account_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> ServiceAccountOut:
    """One service account."""
    account = await identity.get_service_account(session, organization_id, account_id)
    return with_etag(response, ServiceAccountOut.model_validate(account))


@router.patch(
    "/service-accounts/{account_id}",
    response_model=ServiceAccountOut,
    responses=etag_responses(200, conditional=True),
)
async def update_service_account(
    account_id: uuid.UUID,
    body: ServiceAccountUpdate,
    session: Session,
    caller: Caller,
    if_match: IfMatch,
    response: Response,
) -> ServiceAccountOut:
    """Change the role, or disable the account (its tokens stop working at once).
    412 for a stale `If-Match`."""
    await _lock_account(session, if_match, caller, account_id)
    account = await identity.update_service_account(session, caller, account_id, body)
    return with_etag(response, ServiceAccountOut.model_validate(account))


@router.delete(
    "/service-accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_service_account(
    account_id: uuid.UUID, session: Session, caller: Caller, if_match: IfMatch
) -> Response:
    """Delete the account and its tokens (412: stale `If-Match`)."""
    await _lock_account(session, if_match, caller, account_id)
    await identity.delete_service_account(session, caller, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _lock_account(
    session: Session, if_match: IfMatch, caller: Principal, account_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        ServiceAccount,
        ServiceAccount.id == account_id,
        ServiceAccount.organization_id == caller.organization_id,
        what=f"service account {account_id}",
    )
