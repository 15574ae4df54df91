"""Request and response bodies of `/api/auth` (single sign-on and CLI login)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Our secrets and PKCE values are base64url: refuse anything else before it is hashed.
Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]


class CliTokenRequest(BaseModel):
    """The CLI's exchange of its one-time login code for an API token."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[Base64Url, Field(min_length=16, max_length=128)]
    code_verifier: Annotated[
        Base64Url,
        Field(min_length=43, max_length=128, description="The PKCE verifier (RFC 7636)."),
    ]
    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$"
        ),
    ] = Field(default="CLI login", description="A label for the token, e.g. the host name.")


class TokenUser(BaseModel):
    """Whom a token acts for."""

    id: uuid.UUID
    name: str
    email: str | None


class CliTokenResponse(BaseModel):
    """A personal API token. `token` is shown this once and never again."""

    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a type, not a secret
    id: uuid.UUID
    prefix: str
    role: str
    scope: str
    organization_id: uuid.UUID
    expires_at: datetime | None
    user: TokenUser
