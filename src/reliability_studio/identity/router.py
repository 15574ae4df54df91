"""HTTP layer of `/api/me`, `/api/tokens` and `/api/service-accounts`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.identity import service as identity
from reliability_studio.identity.authenticate import Principal, describe
from reliability_studio.identity.dependencies import current_principal
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


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
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
    return created


@router.get("/tokens", response_model=Page[TokenOut])
async def list_tokens(session: Session, caller: Caller, page: PageParams) -> Page[TokenOut]:
    """The caller's tokens (every token of the organization for admins), newest first."""
    return await identity.list_tokens(session, caller, page)


@router.get("/tokens/{token_id}", response_model=TokenOut)
async def get_token(token_id: uuid.UUID, session: Session, caller: Caller) -> TokenOut:
    """One token (never its secret)."""
    return TokenOut.model_validate(await identity.get_token(session, caller, token_id))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: uuid.UUID, session: Session, caller: Caller) -> Response:
    """Revoke a token: it stops working at once. The caller's own, or any (admins)."""
    await identity.revoke_token(session, caller, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/service-accounts", status_code=status.HTTP_201_CREATED, response_model=ServiceAccountOut
)
async def create_service_account(
    body: ServiceAccountCreate, session: Session, caller: Caller, response: Response
) -> ServiceAccountOut:
    """A machine identity (CI, scripts, an integration); give it tokens with
    `POST /api/tokens` and `service_account_id`."""
    account = await identity.create_service_account(session, caller, body)
    response.headers["Location"] = f"/api/service-accounts/{account.id}"
    return ServiceAccountOut.model_validate(account)


@router.get("/service-accounts", response_model=Page[ServiceAccountOut])
async def list_service_accounts(
    session: Session, organization_id: OrganizationId, page: PageParams
) -> Page[ServiceAccountOut]:
    """The organization's service accounts, by name."""
    return await identity.list_service_accounts(session, organization_id, page)


@router.get("/service-accounts/{account_id}", response_model=ServiceAccountOut)
async def get_service_account(
    account_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> ServiceAccountOut:
    """One service account."""
    account = await identity.get_service_account(session, organization_id, account_id)
    return ServiceAccountOut.model_validate(account)


@router.patch("/service-accounts/{account_id}", response_model=ServiceAccountOut)
async def update_service_account(
    account_id: uuid.UUID, body: ServiceAccountUpdate, session: Session, caller: Caller
) -> ServiceAccountOut:
    """Change the role, or disable the account (its tokens stop working at once)."""
    account = await identity.update_service_account(session, caller, account_id, body)
    return ServiceAccountOut.model_validate(account)


@router.delete("/service-accounts/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_service_account(
    account_id: uuid.UUID, session: Session, caller: Caller
) -> Response:
    """Delete the account and its tokens."""
    await identity.delete_service_account(session, caller, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
