"""The dependency every route runs first: who is calling, and may they call this route.

The route's requirement comes from the permission matrix (`permissions.py`). The caller's
principal is kept on the request (`request.state.principal`) for `organization_id()` and
the actor of the audit log (`context.current_actor`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from reliability_studio.api.deps import database_session
from reliability_studio.api.problems import ForbiddenError, UnauthorizedError
from reliability_studio.config import Settings
from reliability_studio.identity.authenticate import (
    BEARER_CHALLENGE,
    Principal,
    bearer_token,
    from_trusted_proxy,
    integration_principal,
    local_owner,
    principal_from_token,
    principal_of_user,
)
from reliability_studio.identity.context import Actor, current_actor
from reliability_studio.identity.origin import check_same_origin
from reliability_studio.identity.permissions import INGEST, MEMBER, PUBLIC, requirement
from reliability_studio.identity.proxy import principal_from_proxy
from reliability_studio.identity.roles import at_least
from reliability_studio.identity.sessions import principal_from_session, read_session_cookie
from reliability_studio.identity.throttle import AuthThrottle
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

SIGN_IN_PATHS = ("/api/auth/",)
TOKEN_PATHS = ("/api/tokens",)
STREAM_PATHS = ("/api/sse",)  # long-lived HTTP responses (WebSockets are told by their scope)
# The ingestion routes, and the integration whose own token (INGEST_TOKEN_*) opens each.
INTEGRATIONS = {
    "/api/integrations/alertmanager": "alertmanager",
    "/api/integrations/grafana": "grafana",
    "/api/alerts": "api",
}


def route_key(connection: HTTPConnection) -> tuple[str, str]:
    """(method, path template) of the matched route; `WS` for a WebSocket."""
    route = connection.scope.get("route")
    path = getattr(route, "path", "") or connection.scope.get("path", "")
    method = "WS" if connection.scope["type"] == "websocket" else connection.scope["method"]
    return method, path


async def authorize(
    connection: HTTPConnection, session: Annotated[AsyncSession, Depends(database_session)]
) -> Principal | None:
    """Authenticate the caller and check the route's requirement; 401, 403 or 429 if not.

    Async so that the actor it binds is seen by the endpoint (same task). `session` is the
    request's own (FastAPI hands the route the same one).
    """
    method, path = route_key(connection)
    need = requirement("GET" if method == "HEAD" else method, path)
    if need is None:  # the start-up check makes this unreachable; refuse all the same
        raise ForbiddenError(f"{method} {path} is not in the permission matrix")
    throttle: AuthThrottle = connection.app.state.auth_throttle
    if path.startswith(SIGN_IN_PATHS):  # guessing codes or flooding the provider
        throttle.endpoint(_address(connection))
    principal = None if need == PUBLIC else await _principal(connection, session, need, path)
    if principal is not None and path.startswith(TOKEN_PATHS) and method != "GET":
        throttle.endpoint(f"token:{principal.token_id or principal.id or principal.name}")
    connection.state.principal = principal
    current_actor.set(_actor(connection, principal))
    return principal


async def _principal(
    connection: HTTPConnection, session: AsyncSession, need: str, path: str
) -> Principal:
    settings: Settings = connection.app.state.settings
    if settings.auth_mode == "none":
        return local_owner()
    principal = await authenticate(connection, session)
    if connection.scope["type"] == "websocket" or path in STREAM_PATHS:
        # A stream lasts minutes: it must not hold the lookup's connection all along.
        await session.close()
    elif _is_sqlite(session):
        # SQLite (WAL) cannot turn a read transaction into a write once another connection
        # has committed since it began (SQLITE_BUSY_SNAPSHOT, no busy wait): the route's
        # writes start a transaction of their own. PostgreSQL has no such limit.
        await session.rollback()
    if need == INGEST:
        return _ingesting(connection, principal, path)
    if principal is None:
        raise UnauthorizedError(
            "sign in: send 'Authorization: Bearer <API token>'", headers=dict(BEARER_CHALLENGE)
        )
    if principal.scope != "api":
        raise ForbiddenError("an ingest token may only send alerts")
    if need != MEMBER and not at_least(principal.role, need):
        raise ForbiddenError(f"this needs the {need} role; you are {principal.role}")
    return principal


def _is_sqlite(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "sqlite"


def _ingesting(connection: HTTPConnection, principal: Principal | None, path: str) -> Principal:
    integration = INTEGRATIONS[path]
    if principal is None:
        gate = connection.app.state.ingest_gate
        if gate.has_token(integration):  # the gate has already checked it
            return integration_principal(integration)
        raise UnauthorizedError(
            "send an ingest token: 'Authorization: Bearer <token>'", headers=dict(BEARER_CHALLENGE)
        )
    if principal.scope == "ingest" or at_least(principal.role, "responder"):
        return principal
    raise ForbiddenError("sending alerts needs an ingest token or the responder role")


async def authenticate(connection: HTTPConnection, session: AsyncSession) -> Principal | None:
    """The caller's principal from the credential they offer; None if they offer none.

    A failed attempt counts against the client's address (`AUTH_FAILURE_LIMIT`).
    """
    settings: Settings = connection.app.state.settings
    throttle: AuthThrottle = connection.app.state.auth_throttle
    address = _address(connection)
    throttle.check(address)
    try:
        if (token := bearer_token(connection)) is not None:
            cache = getattr(connection.app.state, "token_cache", None)
            return await principal_from_token(session, token, cache)
        if (cookie := read_session_cookie(connection.cookies)) is not None:
            signed_in = await principal_from_session(session, cookie, settings)
            if signed_in is None:
                raise UnauthorizedError("the session has ended; sign in again")
            check_same_origin(connection, settings)
            return await principal_of_user(session, connection, signed_in.user, "session")
        if from_trusted_proxy(connection, settings):
            return await principal_from_proxy(session, connection, settings)
    except UnauthorizedError:
        throttle.failed(address)
        raise
    return None


def _address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _actor(connection: HTTPConnection, principal: Principal | None) -> Actor:
    request_id = getattr(connection.state, "request_id", None)
    if principal is None:  # a public route: nobody to name (a header would be a claim)
        return Actor("anonymous", "anonymous", DEFAULT_ORGANIZATION_ID, request_id=request_id)
    if principal.kind == "local":  # no identities: X-Actor names who did it
        name = (connection.headers.get("x-actor") or "").strip()[:200] or "api"
        return Actor("local", name, principal.organization_id, request_id=request_id)
    return Actor(
        kind=principal.kind,
        name=principal.name,
        organization_id=principal.organization_id,
        id=str(principal.id) if principal.id else None,
        token_id=str(principal.token_id) if principal.token_id else None,
        request_id=request_id,
    )


async def current_principal(connection: HTTPConnection) -> Principal:
    """The principal `authorize` found (for routes that need one)."""
    principal: Principal | None = getattr(connection.state, "principal", None)
    if principal is None:
        raise UnauthorizedError("sign in first", headers=dict(BEARER_CHALLENGE))
    return principal
