"""Specification of migration 0011: existing rows get version 1, on both backends, and the
downgrade removes the column without losing a row (nor, on SQLite, cascading deletions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, String, Uuid, column, insert, inspect, select, table, text
from sqlalchemy.sql.expression import TableClause

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.base import UTCDateTime
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.db.migrate import alembic_config, upgrade_to_head
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.support.postgres import PostgresServer

REVISION = "0011"
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> Settings:
    """An empty database of this test's own."""
    if request.param == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'versions.db'}")
    name = f"versions_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return Settings(database_url=postgres_server.url(name))


def _on(settings: Settings, work: Callable[[Connection], T]) -> T:
    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _table(name: str, *columns: str) -> TableClause:
    """A table as an older release knew it: only the columns named, typed as the ORM types
    them (UUIDs and UTC times are stored differently by each backend)."""
    types = {"id": Uuid(), "organization_id": Uuid(), "incident_id": Uuid(), "service_id": Uuid()}
    return table(
        name,
        *(
            column(name, types.get(name, UTCDateTime() if name.endswith("_at") else String()))
            for name in columns
        ),
    )


def _rows_before_versions(connection: Connection) -> None:
    """An incident with a task and a linked service, written as an older release did."""
    now = datetime.now(UTC)
    org = DEFAULT_ORGANIZATION_ID
    service, incident, task = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    stamps = {"created_at": now, "updated_at": now}
    connection.execute(
        insert(_table("services", "id", "organization_id", "name", *stamps)),
        {"id": service, "organization_id": org, "name": "old", **stamps},
    )
    connection.execute(
        insert(
            _table("incidents", "id", "organization_id", "title", "severity", "status", *stamps)
        ),
        {
            "id": incident,
            "organization_id": org,
            "title": "old",
            "severity": "high",
            "status": "open",
            **stamps,
        },
    )
    connection.execute(
        insert(
            _table(
                "incident_services", "incident_id", "service_id", "organization_id", "created_at"
            )
        ),
        {"incident_id": incident, "service_id": service, "organization_id": org, "created_at": now},
    )
    connection.execute(
        insert(
            _table(
                "incident_tasks", "id", "organization_id", "incident_id", "title", "status", *stamps
            )
        ),
        {
            "id": task,
            "organization_id": org,
            "incident_id": incident,
            "title": "old",
            "status": "open",
            **stamps,
        },
    )


def _versions(connection: Connection) -> dict[str, list[int]]:
    return {
        table: [row[0] for row in connection.execute(text(f"SELECT version FROM {table}"))]
        for table in ("organizations", "services", "incidents", "incident_tasks")
    }


def _counts(connection: Connection) -> dict[str, int]:
    tables = ("services", "incidents", "incident_services", "incident_tasks")
    return {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def test_existing_rows_get_version_one_and_the_downgrade_keeps_every_row(
    fresh: Settings,
) -> None:
    # One database for both directions: creating and migrating one is most of the cost.
    config = alembic_config(fresh)
    previous = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(previous, str)
    command.upgrade(config, previous)
    _on(fresh, _rows_before_versions)

    upgrade_to_head(fresh)

    assert _on(fresh, _versions) == {
        "organizations": [1],
        "services": [1],
        "incidents": [1],
        "incident_tasks": [1],
    }
    columns = _on(fresh, lambda c: inspect(c).get_columns("incidents"))
    [version] = [column for column in columns if column["name"] == "version"]
    assert version["nullable"] is False
    assert asyncio.run(_edit_a_service(fresh)) == 2

    counts = _on(fresh, _counts)
    command.downgrade(config, previous)

    columns = _on(fresh, lambda c: inspect(c).get_columns("incidents"))
    assert "version" not in {column["name"] for column in columns}
    # A table rebuild would have dropped `incidents`: refused, or cascading into its rows.
    assert _on(fresh, _counts) == counts
    upgrade_to_head(fresh)
    assert _on(fresh, _counts) == counts


async def _edit_a_service(settings: Settings) -> int:
    """Change the one service through the ORM; its version after."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            service = await session.scalar(select(Service))
            assert service is not None
            service.team = "new"
            await session.commit()
            version: int = service.version
            return version
    finally:
        await engine.dispose()
