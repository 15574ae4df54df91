"""Request and response bodies of `/api/organizations`, `/api/organization` and its members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import Name, NoNul
from reliability_studio.identity.schemas import RoleName

Slug = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
    NoNul,  # the pattern lets NUL through, and PostgreSQL cannot store it
]


class OrganizationCreate(BaseModel):
    """A new organization; its creator becomes its owner."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug = Field(description="Lower-case letters, digits and dashes; unique.")


class OrganizationUpdate(BaseModel):
    """Fields to change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None


class OrganizationOut(BaseModel):
    """An organization, with the caller's role in it."""

    id: uuid.UUID
    name: str
    slug: str
    role: RoleName
    created_at: datetime
    version: ResourceVersion


class MemberCreate(BaseModel):
    """A person to add, by email (created if the server does not know them yet: they sign
    in later through single sign-on or a proxy, or get a token from an admin)."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name | None = None
    role: RoleName = "viewer"


class MemberUpdate(BaseModel):
    """The new role."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName


class MemberOut(BaseModel):
    """A member of the organization."""

    user_id: uuid.UUID
    name: str
    email: str | None
    role: RoleName
    created_at: datetime
    version: ResourceVersion  # the membership's (it moves when the role changes)
