"""Specification of the migrations: the same schema, matching the ORM, on both backends."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy import insert as insert_into

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.db.migrate import alembic_config, upgrade_to_head
from reliability_studio.db.models import Base, Service
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.support.postgres import PostgresServer

SEED_TABLES = (
    "services",
    "slos",
    "incidents",
    "incident_services",
    "timeline_events",
    "incident_tasks",
)

# The index behind each list filter: (table, index name, leading columns).
LIST_FILTER_INDEXES = [
    ("incidents", "ix_incidents_org_created", ["organization_id", "created_at", "id"]),
    (
        "incidents",
        "ix_incidents_org_status_created",
        ["organization_id", "status", "created_at", "id"],
    ),
    (
        "incidents",
        "ix_incidents_org_severity_created",
        ["organization_id", "severity", "created_at", "id"],
    ),
    (
        "incidents",
        "ix_incidents_org_status_severity_created",
        ["organization_id", "status", "severity", "created_at", "id"],
    ),
    (
        "incident_services",
        "ix_incident_services_service_id_incident_id",
        ["service_id", "incident_id"],
    ),
    ("services", "ix_services_organization_id_team", ["organization_id", "team"]),
    ("slos", "ix_slos_org_created", ["organization_id", "created_at", "id"]),
    ("slos", "ix_slos_org_status_created", ["organization_id", "status", "created_at", "id"]),
    (
        "timeline_events",
        "ix_timeline_events_incident_occurred",
        ["incident_id", "occurred_at", "id"],
    ),
    ("incident_tasks", "ix_incident_tasks_incident_created", ["incident_id", "created_at", "id"]),
]

_database_numbers = itertools.count(1)
T = TypeVar("T")


def _new_database(backend: str, directory: Path, postgres_server: PostgresServer) -> Settings:
    """Settings for an empty database that no migration has touched."""
    if backend == "sqlite":
        return Settings(database_url=f"sqlite:///{directory / 'fresh.db'}")
    name = f"fresh_{next(_database_numbers)}_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    return Settings(database_url=postgres_server.url(name))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_settings(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> Settings:
    """An empty database of this test's own."""
    return _new_database(request.param, tmp_path, postgres_server)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def migrated_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
) -> Settings:
    """A database migrated once from empty, shared by the tests that only look at it."""
    settings = _new_database(request.param, tmp_path_factory.mktemp("migrated"), postgres_server)
    upgrade_to_head(settings)
    return settings


def _inspect(settings: Settings, look: Callable[[Connection], T]) -> T:
    """Run `look` on a synchronous connection to the database."""

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(
                (i["name"] or "", tuple(i["column_names"])) for i in inspector.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
        }
        for table in inspector.get_table_names()
    }


def test_a_fresh_database_starts_empty(fresh_settings: Settings) -> None:
    assert _inspect(fresh_settings, lambda c: inspect(c).get_table_names()) == []


def test_upgrade_creates_the_seed_tables_and_organizations(migrated_settings: Settings) -> None:
    tables = set(_inspect(migrated_settings, lambda c: inspect(c).get_table_names()))
    assert {*SEED_TABLES, "organizations", "alembic_version"} <= tables


@pytest.mark.parametrize("table", SEED_TABLES)
def test_every_seed_table_belongs_to_an_organization(
    migrated_settings: Settings, table: str
) -> None:
    schema = _inspect(migrated_settings, _schema)[table]
    [organization_id] = [c for c in schema["columns"] if c[0] == "organization_id"]
    assert organization_id[2] is False, "organization_id must be NOT NULL"
    assert (("organization_id",), "organizations") in schema["foreign_keys"]


def test_upgrade_creates_the_default_organization(migrated_settings: Settings) -> None:
    rows = _inspect(
        migrated_settings,
        lambda c: c.execute(text("SELECT id, slug, name FROM organizations")).all(),
    )
    assert len(rows) == 1
    [(row_id, slug, name)] = rows
    assert uuid.UUID(str(row_id)) == DEFAULT_ORGANIZATION_ID
    assert slug == "default"
    assert name


def test_upgrade_records_the_head_revision(migrated_settings: Settings) -> None:
    head = ScriptDirectory.from_config(alembic_config(migrated_settings)).get_current_head()
    current = _inspect(
        migrated_settings, lambda c: MigrationContext.configure(c).get_current_revision()
    )
    assert head is not None
    assert current == head


def test_upgrading_twice_changes_nothing_and_keeps_the_data(fresh_settings: Settings) -> None:
    upgrade_to_head(fresh_settings)

    def insert(connection: Connection) -> None:
        now = datetime.now(UTC)
        connection.execute(
            insert_into(Service).values(
                id=uuid.uuid4(),
                organization_id=DEFAULT_ORGANIZATION_ID,
                name="kept",
                created_at=now,
                updated_at=now,
            )
        )
        connection.commit()

    _inspect(fresh_settings, insert)
    before = _inspect(fresh_settings, _schema)

    upgrade_to_head(fresh_settings)

    assert _inspect(fresh_settings, _schema) == before
    names = _inspect(fresh_settings, lambda c: c.execute(text("SELECT name FROM services")).all())
    assert [name for (name,) in names] == ["kept"]
    organizations = _inspect(
        fresh_settings, lambda c: c.execute(text("SELECT count(*) FROM organizations")).scalar()
    )
    assert organizations == 1


def test_the_orm_metadata_matches_the_migrated_schema(migrated_settings: Settings) -> None:
    """What `alembic check` verifies: autogenerate finds nothing left to migrate."""

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert _inspect(migrated_settings, differences) == []


@pytest.mark.parametrize(("table", "name", "columns"), LIST_FILTER_INDEXES)
def test_the_indexes_behind_the_list_filters_exist(
    migrated_settings: Settings, table: str, name: str, columns: list[str]
) -> None:
    indexes = {
        index["name"]: index["column_names"]
        for index in _inspect(migrated_settings, lambda c: inspect(c).get_indexes(table))
    }
    assert indexes.get(name) == columns


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    fresh_settings: Settings,
) -> None:
    upgrade_to_head(fresh_settings)
    migrated = _inspect(fresh_settings, _schema)

    command.downgrade(alembic_config(fresh_settings), "base")
    assert set(_inspect(fresh_settings, lambda c: inspect(c).get_table_names())) <= {
        "alembic_version"
    }

    upgrade_to_head(fresh_settings)
    assert _inspect(fresh_settings, _schema) == migrated
