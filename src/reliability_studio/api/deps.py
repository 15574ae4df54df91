"""Dependencies shared by the routers: the database session and the caller's context."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID


async def database_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and rolled back if uncommitted) at the end."""
    async with request.app.state.sessionmaker() as session:
        yield session


def organization_id() -> uuid.UUID:
    """The organization the request acts in. One default organization for now."""
    return DEFAULT_ORGANIZATION_ID


def actor(
    x_actor: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Who makes the change, recorded on automatic timeline events. "
            "Unauthenticated until API identities exist.",
        ),
    ] = None,
) -> str:
    """The caller that automatic timeline events are attributed to."""
    return x_actor.strip() if x_actor and x_actor.strip() else "api"


Session = Annotated[AsyncSession, Depends(database_session)]
OrganizationId = Annotated[uuid.UUID, Depends(organization_id)]
Actor = Annotated[str, Depends(actor)]
