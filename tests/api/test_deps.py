"""Specification of the request's database session (`api.deps.database_session`): a
connection that PostgreSQL ends after the request's last statement costs nothing more than
that connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.api.deps import database_session
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from tests.support.postgres import end_session


def _request_of(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """What `database_session` reads from a request: the app's session factory."""
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(sessionmaker=sessionmaker)))


async def _open_and_lose(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncGenerator[AsyncSession, None]:
    """A request's session, in a transaction whose connection the server has just ended."""
    requests_session = database_session(_request_of(sessionmaker))
    session = await anext(requests_session)
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    await end_session(settings, pid)
    return requests_session


async def _closed_quietly(settings: Settings) -> tuple[int, int]:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        requests_session = await _open_and_lose(settings, sessionmaker)
        with pytest.raises(StopAsyncIteration):  # how FastAPI ends the dependency
            await anext(requests_session)
        async with sessionmaker() as after:  # the pool serves a live connection again
            answer = (await after.execute(text("SELECT 1"))).scalar_one()
        return answer, engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def _route_error_kept(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        requests_session = await _open_and_lose(settings, create_sessionmaker(engine))
        with pytest.raises(LookupError, match="the route's own error"):
            await requests_session.athrow(LookupError("the route's own error"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_connection_ended_after_the_last_statement_closes_without_an_error(
    settings: Settings,
) -> None:
    answer, checked_out = asyncio.run(_closed_quietly(settings))
    assert answer == 1
    assert checked_out == 0


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_lost_connection_at_close_does_not_hide_the_routes_own_error(
    settings: Settings,
) -> None:
    asyncio.run(_route_error_kept(settings))
