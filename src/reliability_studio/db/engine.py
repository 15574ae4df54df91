"""The async engine and session factory, configured for SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from reliability_studio.config import Settings


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (labels, metadata) through orjson: several times faster than `json`, and
# alert ingestion encodes and decodes thousands of label sets a second.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for `settings.database_url`, with pool and pragmas set for the backend."""
    database = settings.database
    if database.backend == "sqlite":
        engine = create_async_engine(database.url, **_sqlite_engine_options(settings))
        _set_sqlite_pragmas(engine.sync_engine, settings.sqlite_synchronous)
        return engine

    connect_args: dict[str, Any] = {
        **database.connect_args,
        "timeout": settings.db_connect_timeout_seconds,
        "server_settings": {"application_name": "reliability-studio"},
    }
    engine = create_async_engine(
        database.url,
        connect_args=connect_args,
        **JSON_CODEC,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    _report_connect_failures_as_operational(engine)
    _discard_closed_connections_at_checkout(engine)
    return engine


def _discard_closed_connections_at_checkout(engine: AsyncEngine) -> None:
    """A restarted PostgreSQL leaves dead connections in the pool: drop them before use.

    asyncpg reads its socket all the time, so it learns that the server ended a connection
    (a restart, a crash, `pg_terminate_backend`) as soon as that arrives, and `is_closed()`
    says so without asking the server. SQLAlchemy's `pool_pre_ping` asks instead, with three
    round trips (BEGIN, `;`, ROLLBACK) on every checkout, three of a GET's eight. Raising
    `DisconnectionError` here makes the pool discard the connection and check out another:
    SQLAlchemy's documented custom "pessimistic" check.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server ended this pooled connection")


def _report_connect_failures_as_operational(engine: AsyncEngine) -> None:
    """Make every failure to open a connection a DBAPI `OperationalError`.

    asyncpg raises what it meets while connecting as is: `socket.gaierror` for a host name
    that does not resolve, `OSError("Multiple exceptions")` when a name has several
    addresses that all refuse, `CannotConnectNowError` while the server starts or stops,
    `InvalidCatalogNameError` for a missing database, and so on. Only some are
    `ConnectionError`s, and none is SQLAlchemy's `OperationalError`, so the API answered
    those outages with 500. Translated here, every one is "database unavailable"
    (503 + Retry-After), and the original stays attached as the cause for the logs.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        dbapi = dialect.loaded_dbapi
        try:
            return dialect.connect(*cargs, **cparams)
        except dbapi.OperationalError:
            raise
        except Exception as exc:
            raise dbapi.OperationalError(f"cannot connect: {exc!r}") from exc


def create_sqlite_migration_engine(settings: Settings) -> Engine:
    """A synchronous engine on `settings`' SQLite database, with the app's pragmas.

    Migrations run hundreds of small DDL statements; through aiosqlite each one is a
    round trip to the driver's thread, which made creating a fresh database most of a
    first start. Alembic runs synchronously anyway, so it gets the plain driver.
    """
    engine = create_sync_engine(
        settings.database.url.set(drivername="sqlite"), **_sqlite_engine_options(settings)
    )
    _set_sqlite_pragmas(engine, settings.sqlite_synchronous)
    return engine


def _sqlite_engine_options(settings: Settings) -> dict[str, Any]:
    """What both SQLite engines are made with; makes the database file's folder if needed."""
    database = settings.database
    assert database.sqlite_path is not None
    database.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return {"connect_args": {"timeout": settings.db_connect_timeout_seconds}, **JSON_CODEC}


def _set_sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    """WAL for concurrent readers, foreign keys on, and a busy timeout for writers."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see below).
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # The driver would otherwise start a transaction only at the first write, so two
        # requests could both read an incident, then both write: a lost update. IMMEDIATE
        # takes the write lock up front, which serialises read-modify-write transactions
        # as `SELECT ... FOR UPDATE` does on PostgreSQL. (SQLAlchemy's documented recipe.)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def add_session_info(sessionmaker: async_sessionmaker[AsyncSession], key: str, value: Any) -> None:
    """Give every session `sessionmaker` makes from now on `session.info[key] = value`,
    keeping what other parts have added (session hooks find their collaborators there)."""
    info = dict(sessionmaker.kw.get("info") or {})
    info[key] = value
    sessionmaker.configure(info=info)
