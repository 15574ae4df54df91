"""Identities for the tests of access control: settings with tokens required, and users,
service accounts and tokens made straight in the database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.identity.models import ApiToken, Membership, User
from reliability_studio.identity.tokens import hash_token, new_token, shown_prefix
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID, Organization


def secured(settings: Settings, **changes: Any) -> Settings:
    """`settings` with identities required (AUTH_MODE=token), plus `changes`."""
    return settings.model_copy(update={"auth_mode": "token", **changes})


def bearer(token: str) -> dict[str, str]:
    """The header that sends `token`."""
    return {"Authorization": f"Bearer {token}"}


def user_token(
    settings: Settings,
    role: str = "owner",
    *,
    organization_id: uuid.UUID = DEFAULT_ORGANIZATION_ID,
    email: str | None = None,
    expires_in: timedelta | None = timedelta(days=1),
    revoked: bool = False,
    scope: str = "api",
) -> str:
    """A new user with `role` in the organization, and a token of theirs."""
    token = new_token()

    async def create() -> None:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                user = User(name=email or f"user-{token[3:9]}", email=email)
                session.add(user)
                await session.flush()
                session.add(Membership(user_id=user.id, organization_id=organization_id, role=role))
                session.add(
                    ApiToken(
                        organization_id=organization_id,
                        name="test",
                        user_id=user.id,
                        role=role,
                        scope=scope,
                        token_hash=hash_token(token),
                        prefix=shown_prefix(token),
                        expires_at=utcnow() + expires_in if expires_in is not None else None,
                        revoked_at=utcnow() if revoked else None,
                    )
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(create())
    return token


def new_organization(settings: Settings, slug: str) -> uuid.UUID:
    """A second organization, straight in the database; its id."""
    organization_id = uuid.uuid4()

    async def create() -> None:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                session.add(Organization(id=organization_id, name=slug.title(), slug=slug))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(create())
    return organization_id
