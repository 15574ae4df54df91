"""Request and response bodies of `/api/me`, `/api/tokens` and `/api/service-accounts`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import Name

RoleName = Literal["viewer", "responder", "admin", "owner"]


class MeOut(BaseModel):
    """The caller, as the server knows them."""

    kind: str = Field(description="user, service_account, integration or local.")
    id: uuid.UUID | None
    name: str
    organization_id: uuid.UUID
    role: RoleName
    token_id: uuid.UUID | None
    scope: Literal["api", "ingest"]
    via: str = Field(description="token, session, proxy or none (AUTH_MODE=none).")


class TokenCreate(BaseModel):
    """A new API token: the caller's own, or a service account's (admins)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    role: RoleName | None = Field(
        default=None, description="At most the caller's role (the default)."
    )
    scope: Literal["api", "ingest"] = Field(
        default="api", description="`ingest` tokens may only send alerts."
    )
    expires_in_days: int = Field(default=90, ge=1, description="At most TOKEN_MAX_DAYS.")
    service_account_id: uuid.UUID | None = None


class TokenOut(BaseModel):
    """An API token as lists show it: never the secret, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    role: RoleName
    scope: Literal["api", "ingest"]
    user_id: uuid.UUID | None
    service_account_id: uuid.UUID | None
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    version: ResourceVersion


class TokenCreated(TokenOut):
    """A token just made: `token` is shown this once and never again."""

    token: str


class ServiceAccountCreate(BaseModel):
    """A new machine identity."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    role: RoleName = "viewer"


class ServiceAccountUpdate(BaseModel):
    """Fields to change; absent ones stay."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    disabled: bool | None = None


class ServiceAccountOut(BaseModel):
    """A service account."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    role: RoleName
    disabled: bool
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion
