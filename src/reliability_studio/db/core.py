"""Core statements run in an ORM session's transaction, without the ORM's execute layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.ext.asyncio import AsyncSession


async def execute_core(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Result[*tuple[Any, ...]]:
    """Run a Core statement (columns, not entities) on `session`'s connection, in its
    transaction.

    `session.execute` would first hand the statement to the ORM, which sets up entity
    loading and session events for it even when it selects bare columns: that layer was a
    tenth of the server's CPU on a one-incident GET (py-spy). Only for statements that load
    no ORM entities and need no session event.
    """
    connection = await session.connection()
    return await connection.execute(statement, parameters)
