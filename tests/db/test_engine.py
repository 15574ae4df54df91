"""Specification of the PostgreSQL engine's pool: a connection the server ended while it
sat in the pool is replaced before use, so a restart costs no request."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from tests.support.postgres import end_session


async def _pids_before_and_after_termination(settings: Settings) -> tuple[int, int, int]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            pooled = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await end_session(settings, pooled)
        async with engine.connect() as connection:  # the first checkout after the end
            after = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pooled, after, engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_pooled_connection_the_server_ended_is_replaced_before_use(settings: Settings) -> None:
    pooled, after, checked_out = asyncio.run(_pids_before_and_after_termination(settings))
    assert after != pooled
    assert checked_out == 0
