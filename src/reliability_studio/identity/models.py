"""Users, their memberships in organizations, service accounts, API tokens and browser
sessions.

Secrets are never stored: a token or session id is kept as its SHA-256 (they are long and
random, so a plain hash is enough to make a stolen table useless), with a short prefix a
human can recognise in a list.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
    one_of,
    utcnow,
)

ROLES = ("viewer", "responder", "admin", "owner")
TOKEN_SCOPES = ("api", "ingest")


class User(UUIDPrimaryKey, Timestamps, Base):
    """A person. Signs in with a token, through single sign-on, or behind a trusted proxy."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # Who the identity provider says this is (`iss`, `sub`), once they signed in with it.
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_login_at: Mapped[datetime | None]


class Membership(Versioned, Base):
    """A user's role in one organization."""

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        Index("ix_memberships_organization_id", "organization_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceAccount(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """A machine identity of one organization (CI, a script, an integration)."""

    __tablename__ = "service_accounts"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint(one_of("role", ROLES), name="role"),
    )

    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())


class ApiToken(UUIDPrimaryKey, OrganizationOwned, Versioned, Base):
    """A bearer token of a user or a service account, acting in one organization.

    Its role is a ceiling: a personal token never does more than its owner's current role.
    An `ingest` token only sends alerts (the integration endpoints).
    """

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        CheckConstraint(one_of("scope", TOKEN_SCOPES), name="scope"),
        CheckConstraint("(user_id IS NULL) <> (service_account_id IS NULL)", name="one_owner"),
        Index("ix_api_tokens_org_created", "organization_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    service_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service_accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default="api")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BrowserSession(UUIDPrimaryKey, Base):
    """A signed-in browser (single sign-on): the cookie holds the id, the table its hash."""

    __tablename__ = "browser_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
