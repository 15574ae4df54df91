"""Helpers of the idempotency key specifications: the header, and the keys as stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.idempotency.models import IdempotencyKey
from reliability_studio.idempotency.rules import fingerprint, principal_scope
from reliability_studio.identity.models import ApiToken, Membership
from reliability_studio.identity.tokens import hash_token, new_token, shown_prefix
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

T = TypeVar("T")

# For behaviours that the database does not change (the header's syntax, a refusal's
# shape): one backend is enough, and keeps these specifications fast.
sqlite_only = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


def keyed(key: str | None = None, **headers: str) -> dict[str, str]:
    """Headers carrying `Idempotency-Key` (a new random key unless `key` is given)."""
    return {"Idempotency-Key": key or str(uuid.uuid4()), **headers}


def in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a session of its own on the test's database, committed."""

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def count(settings: Settings, model: Any) -> int:
    """Rows of `model`'s table."""

    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return in_database(settings, work)


def stored_keys(settings: Settings) -> list[IdempotencyKey]:
    """Every stored key."""

    async def work(session: AsyncSession) -> list[IdempotencyKey]:
        return list((await session.scalars(select(IdempotencyKey))).all())

    return in_database(settings, work)


def age_keys(settings: Settings, by: timedelta, key: str | None = None, **changes: Any) -> None:
    """Move the stored keys' first use and lock `by` into the past, and set `changes`
    (every key, or only `key`)."""

    async def work(session: AsyncSession) -> None:
        query = select(IdempotencyKey)
        if key is not None:
            query = query.where(IdempotencyKey.key == key)
        for row in (await session.scalars(query)).all():
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == row.id)
                .values(created_at=row.created_at - by, locked_at=row.locked_at - by, **changes)
            )

    in_database(settings, work)


def abandoned_key(
    settings: Settings, key: str, path: str, body: dict[str, Any], state: str, age: timedelta
) -> None:
    """A key as a process that died `age` ago left it, holding the request `path`, `body`
    of the local owner (AUTH_MODE=none), in `state`."""
    now = utcnow()
    row = IdempotencyKey(
        organization_id=DEFAULT_ORGANIZATION_ID,
        principal=principal_scope("local", None, "local"),
        key=key,
        fingerprint=fingerprint("POST", path, b"", orjson.dumps(body)),
        method="POST",
        path=path,
        state=state,
        lock_id=uuid.uuid4(),
        locked_at=now - age,
        created_at=now - age,
    )

    async def work(session: AsyncSession) -> None:
        session.add(row)

    in_database(settings, work)


def same_user_in(settings: Settings, token: str, organization_id: uuid.UUID) -> str:
    """A token of the user who owns `token`, acting in `organization_id` (made an owner
    there): the same principal in another organization."""
    other = new_token()

    async def work(session: AsyncSession) -> None:
        user_id = await session.scalar(
            select(ApiToken.user_id).where(ApiToken.token_hash == hash_token(token))
        )
        assert user_id is not None
        session.add(Membership(user_id=user_id, organization_id=organization_id, role="owner"))
        session.add(
            ApiToken(
                organization_id=organization_id,
                name="other organization",
                user_id=user_id,
                role="owner",
                token_hash=hash_token(other),
                prefix=shown_prefix(other),
                expires_at=utcnow() + timedelta(days=1),
            )
        )

    in_database(settings, work)
    return other
