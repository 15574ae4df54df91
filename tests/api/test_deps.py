"""Specification of the request's database session (`api.deps.database_session`): a
connection that PostgreSQL ends after the request's last statement costs nothing more than
that connection; a route marked `reads_only` runs without a transaction on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from reliability_studio.api.deps import database_session
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from tests.support.postgres import end_session


def _request_of(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """What `database_session` reads from a request: the app's session factory."""
    return SimpleNamespace(
        scope={}, app=SimpleNamespace(state=SimpleNamespace(sessionmaker=sessionmaker))
    )


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


def _statements_sent_for(client: TestClient, path: str) -> list[str]:
    """Every statement the app sends PostgreSQL while answering `GET path`."""
    sent: list[str] = []
    engine: AsyncEngine = client.app.state.engine  # type: ignore[attr-defined]

    def record(query: Any) -> None:
        sent.append(query.query)

    logged: list[Any] = []

    def log_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(record)  # a set: added once
        logged.append(dbapi_connection.driver_connection)

    event.listen(engine.sync_engine, "checkout", log_on_checkout)
    try:
        response = client.get(path)
    finally:
        event.remove(engine.sync_engine, "checkout", log_on_checkout)
        for driver_connection in logged:
            driver_connection.remove_query_logger(record)
    assert response.status_code == 200, response.text
    return sent


def _transaction_statements(sent: list[str]) -> list[str]:
    """The transaction control among `sent` (the SQL itself goes through prepared
    statements, which asyncpg's query loggers do not see)."""
    words = [s.strip().rstrip(";").upper() for s in sent]
    return [w for w in words if w in ("BEGIN", "ROLLBACK", "COMMIT")]


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_read_only_route_skips_the_begin_and_rollback_that_other_routes_send(
    client: TestClient,
) -> None:
    other = _statements_sent_for(client, "/api/notification-channels")
    read_only = _statements_sent_for(client, "/api/incidents?status=open")
    assert _transaction_statements(other) == ["BEGIN", "ROLLBACK"]
    assert _transaction_statements(read_only) == []
