"""Fixtures: every API test runs against SQLite and a real PostgreSQL.

The PostgreSQL server is started once per session, from the Debian binaries, in a temp dir
on 127.0.0.1, and stopped at the end. Both databases are migrated with Alembic once, which
is itself the test that the migrations work on both backends; each test then starts from
empty tables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert

from reliability_studio.alerts.rules_service import default_rule_rows
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.db.migrate import upgrade_to_head
from reliability_studio.db.models import (
    SLO,
    Alert,
    AlertGroup,
    AnalysisRun,
    ApiToken,
    AuditEntry,
    BrowserSession,
    CorrelationRule,
    Evidence,
    IdempotencyKey,
    Incident,
    IncidentService,
    IncidentTask,
    Membership,
    Notification,
    NotificationChannel,
    NotificationPolicy,
    Organization,
    Service,
    ServiceAccount,
    SLOAlert,
    SLOSnapshot,
    TimelineEvent,
    User,
)
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.support.postgres import PostgresServer

BACKENDS = ("sqlite", "postgresql")
# API tests do not run the background SLO scheduler, and no Prometheus answers at this
# address (port 1 refuses at once); the SLO engine tests start a real one.
# Nor the alert correlator: the alert tests turn it on (tests/alerts/conftest.py).
# Tests run without identities, as on a developer's machine, unless they turn them on
# (tests/identity, tests/support/identity.py); this covers apps built from a bare Settings().
os.environ["AUTH_MODE"] = "none"
# The fake Slack, PagerDuty, SMTP and webhook receivers listen on loopback, which outbound
# safety denies by default: allow it here, explicitly. tests/outbound turns it off again.
LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"
os.environ["OUTBOUND_ALLOWED_NETWORKS"] = LOOPBACK_NETWORKS
QUIET_ENGINE: dict[str, Any] = {
    "slo_engine_enabled": False,
    "alert_correlation_enabled": False,
    "analysis_enabled": False,
    "notify_enabled": False,
    "prometheus_url": "http://127.0.0.1:1",
}
# Children before parents, so that foreign keys never object.
TABLES_TO_EMPTY = (
    IdempotencyKey,
    AuditEntry,
    Notification,
    NotificationPolicy,
    NotificationChannel,
    Evidence,
    AnalysisRun,
    Alert,
    AlertGroup,
    CorrelationRule,
    SLOAlert,
    SLOSnapshot,
    TimelineEvent,
    IncidentTask,
    IncidentService,
    SLO,
    Incident,
    Service,
    BrowserSession,
    ApiToken,
    ServiceAccount,
    Membership,
    User,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()


@pytest.fixture(scope="session")
def database_urls(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> dict[str, str]:
    """One migrated database per backend."""
    postgres_server.create_database("reliability_studio_test")
    urls = {
        "sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}",
        "postgresql": postgres_server.url("reliability_studio_test"),
    }
    for url in urls.values():
        upgrade_to_head(Settings(database_url=url))
    return urls


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> Settings:
    """Settings for one backend, over empty tables."""
    settings = Settings(database_url=database_urls[request.param], **QUIET_ENGINE)
    asyncio.run(_empty_tables(settings))
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of a freshly created app (lifespan included)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a new, migrated SQLite file of this test's own."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'own.db'}", **QUIET_ENGINE)
    upgrade_to_head(settings)
    return settings


async def _empty_tables(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            for table in TABLES_TO_EMPTY:
                await connection.execute(delete(table))
            await connection.execute(  # organizations the test made; the default one stays
                delete(Organization).where(Organization.id != DEFAULT_ORGANIZATION_ID)
            )
            # Every test starts with the rules a fresh install has.
            await connection.execute(
                insert(CorrelationRule), default_rule_rows(DEFAULT_ORGANIZATION_ID)
            )
    finally:
        await engine.dispose()
