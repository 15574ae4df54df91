"""Specification of the committing process's own forgetting: a commit that changes
credentials empties the token cache at the commit, before any notification could arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.support.identity import user_token

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.identity.models import ApiToken, User
from reliability_studio.identity.token_cache import TokenCache, install_forgetting
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

HASH = "a" * 64


def remembered_after(settings: Settings, change: Callable[[AsyncSession], Awaitable[None]]) -> bool:
    """Whether a remembered token is still remembered once `change` is committed."""

    async def run() -> bool:
        engine = create_engine(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            cache = TokenCache()
            cache.listening()
            install_forgetting(sessionmaker, cache)
            cache.keep(cache.ticket(), HASH, ("row",))
            async with sessionmaker() as session:
                await change(session)
                await session.commit()
            return cache.get(HASH) is not None
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_revoking_a_token_forgets_at_the_commit(settings: Settings) -> None:
    user_token(settings, "viewer")

    async def revoke(session: AsyncSession) -> None:
        token = (await session.execute(select(ApiToken))).scalars().one()
        token.revoked_at = utcnow()

    assert not remembered_after(settings, revoke)


def test_deleting_a_user_forgets_at_the_commit(settings: Settings) -> None:
    user_token(settings, "viewer")

    async def delete_user(session: AsyncSession) -> None:
        await session.delete((await session.execute(select(User))).scalars().one())

    assert not remembered_after(settings, delete_user)


def test_a_commit_that_changes_no_credentials_keeps_what_is_remembered(
    settings: Settings,
) -> None:
    async def add_service(session: AsyncSession) -> None:
        session.add(Service(name="checkout", organization_id=DEFAULT_ORGANIZATION_ID))

    assert remembered_after(settings, add_service)
