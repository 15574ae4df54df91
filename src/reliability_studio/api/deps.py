"""Dependencies shared by the routers: the database session and the caller's context."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from reliability_studio.identity.authenticate import Principal
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

log = logging.getLogger(__name__)

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])
READS_ONLY = "reads_only"
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def reads_only(endpoint: EndpointT) -> EndpointT:
    """Mark a route that only reads: on PostgreSQL its request runs without a transaction.

    Each statement then stands on its own (autocommit), which saves the `BEGIN` and the
    closing `ROLLBACK`, two of a GET's five round trips. Reads see nothing they would not
    have seen in a transaction: at READ COMMITTED, PostgreSQL's level and ours, every
    statement takes its own snapshot either way. (The token check's occasional
    `last_used_at` write is one statement, committed at once as before.) On SQLite reads
    keep their transaction: there the driver's isolation setting is shared with the
    `BEGIN IMMEDIATE` that serialises writers (see `db/engine.py`).
    """
    setattr(endpoint, READS_ONLY, True)
    return endpoint


def _runs_without_transaction(connection: HTTPConnection) -> bool:
    endpoint = connection.scope.get("endpoint")
    return (
        getattr(endpoint, READS_ONLY, False)
        and connection.app.state.engine.dialect.name == "postgresql"
    )


async def database_session(connection: HTTPConnection) -> AsyncGenerator[AsyncSession, None]:
    """One session per request, closed (and rolled back if uncommitted) at the end.

    The same session serves `authorize` (the caller's token) and the route: one pool
    checkout and one transaction per request, not two; none for a route marked
    `reads_only`.
    """
    session: AsyncSession = connection.app.state.sessionmaker()
    try:
        if _runs_without_transaction(connection):
            await session.connection(execution_options=AUTOCOMMIT)
        yield session
    finally:
        await close_session(session)


async def close_session(session: AsyncSession) -> None:
    """Close `session`, rolling back what it left uncommitted, even if the request is cancelled.

    A connection that PostgreSQL ended after the request's last statement (a restart, a
    crash, an administrator's `pg_terminate_backend`) fails that rollback. By then the
    request's outcome is settled (committed, or aborted with the server's session), and
    SQLAlchemy has already discarded the connection: that is logged, not raised, so it
    neither turns an answered request into a 500 nor hides the request's own error.
    """
    try:
        await asyncio.shield(session.close())
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        log.warning(
            "database connection lost before its session closed", extra={"error": str(error.orig)}
        )


def organization_of(connection: HTTPConnection) -> uuid.UUID:
    """The organization the request acts in: the caller's (see `identity.dependencies`)."""
    principal: Principal | None = getattr(connection.state, "principal", None)
    return principal.organization_id if principal is not None else DEFAULT_ORGANIZATION_ID


async def actor(
    connection: HTTPConnection,
    x_actor: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Who makes the change, recorded on automatic timeline events, when "
            "the server runs without identities (AUTH_MODE=none); otherwise the caller's "
            "own name is recorded.",
        ),
    ] = None,
) -> str:
    """The caller that automatic timeline events are attributed to."""
    principal: Principal | None = getattr(connection.state, "principal", None)
    if principal is not None and principal.kind != "local":
        return principal.name
    return x_actor.strip() if x_actor and x_actor.strip() else "api"


# Dependencies are `async def` even when they do not wait: FastAPI runs a plain `def`
# dependency in a worker thread, a hop that cost more than the list query's Python.
async def organization_id(connection: HTTPConnection) -> uuid.UUID:
    """`organization_of` as a dependency."""
    return organization_of(connection)


Session = Annotated[AsyncSession, Depends(database_session)]
OrganizationId = Annotated[uuid.UUID, Depends(organization_id)]
Actor = Annotated[str, Depends(actor)]
