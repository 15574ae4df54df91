"""Alembic environment: runs migrations over the application's engine (on SQLite, its
synchronous twin: see `create_sqlite_migration_engine`)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sqlite_migration_engine
from reliability_studio.db.models import Base

config = context.config
settings: Settings = config.attributes.get("settings") or Settings()


# Several replicas may start at once; on PostgreSQL they take turns migrating.
MIGRATION_LOCK_ID = 7_115_020_411


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online_sqlite() -> None:
    engine = create_sqlite_migration_engine(settings)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


async def _run_online() -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=settings.database.url, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
elif settings.database.backend == "sqlite":
    _run_online_sqlite()
else:
    asyncio.run(_run_online())
