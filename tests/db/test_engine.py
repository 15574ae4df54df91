"""Specification of the engines: on PostgreSQL, a connection the server ended while it sat
in the pool is replaced before use, so a restart costs no request; on SQLite, migrations
run on a synchronous engine with the same pragmas as the app's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sqlite_migration_engine
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


SQLITE_PRAGMAS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")


async def _app_engine_pragmas(settings: Settings) -> dict[str, object]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in SQLITE_PRAGMAS
            }
    finally:
        await engine.dispose()


def test_sqlite_migrations_connect_with_the_pragmas_of_the_app(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'studio.db'}")
    engine = create_sqlite_migration_engine(settings)
    try:
        with engine.connect() as connection:
            migrating = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in SQLITE_PRAGMAS
            }
    finally:
        engine.dispose()
    assert migrating == asyncio.run(_app_engine_pragmas(settings))
    assert migrating["foreign_keys"] == 1
    assert migrating["journal_mode"] == "wal"
