"""Who is calling: an API token, a browser session, a trusted proxy's headers, or (on
loopback, for local development) nobody at all.

Each way yields a `Principal`: the identity, the organization it acts in and its role
there. A request that offers a credential that does not hold (unknown, revoked, expired,
its owner disabled or no longer a member) is refused, whatever else it carries.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from reliability_studio.api.problems import UnauthorizedError, UnprocessableError
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.core import execute_core
from reliability_studio.identity.models import ApiToken, Membership, ServiceAccount, User
from reliability_studio.identity.roles import lower
from reliability_studio.identity.token_cache import TokenCache
from reliability_studio.identity.tokens import TOKEN_PREFIX, hash_token, same_hash
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

ORGANIZATION_HEADER = "X-Organization-ID"
# `last_used_at` is written at most this often per token: not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="reliability-studio"'}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, in one organization."""

    kind: str  # user, service_account, integration, local
    name: str
    organization_id: uuid.UUID
    role: str
    id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    scope: str = "api"  # api, or ingest (sends alerts only)
    via: str = "token"  # token, session, proxy, integration, none


def local_owner() -> Principal:
    """The caller when `AUTH_MODE=none`: everyone on loopback is the owner."""
    return Principal(
        kind="local",
        name="local",
        organization_id=DEFAULT_ORGANIZATION_ID,
        role="owner",
        via="none",
    )


def integration_principal(integration: str) -> Principal:
    """A caller that proved an `INGEST_TOKEN_*`: it sends alerts to the default organization."""
    return Principal(
        kind="integration",
        name=integration,
        organization_id=DEFAULT_ORGANIZATION_ID,
        role="viewer",
        scope="ingest",
        via="integration",
    )


def bearer_token(connection: HTTPConnection) -> str | None:
    """Our API token from `Authorization: Bearer`, if it is one of ours (`rs_...`).

    Other bearer values are left alone: they may be an integration's own token.
    """
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    token = credentials.strip()
    if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX):
        return token
    return None


# Built once, columns only: the token check runs on every request, and loading four ORM
# entities for it cost more Python than the rest of a one-incident GET.
TOKEN_OWNER = (
    select(
        ApiToken.id,
        ApiToken.token_hash,
        ApiToken.organization_id,
        ApiToken.role,
        ApiToken.scope,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        ApiToken.service_account_id,
        User.id.label("user_id"),
        User.email.label("user_email"),
        User.name.label("user_name"),
        User.disabled.label("user_disabled"),
        Membership.role.label("member_role"),
        ServiceAccount.name.label("account_name"),
        ServiceAccount.role.label("account_role"),
        ServiceAccount.disabled.label("account_disabled"),
    )
    .select_from(ApiToken)
    .outerjoin(User, User.id == ApiToken.user_id)
    .outerjoin(
        Membership,
        and_(
            Membership.user_id == ApiToken.user_id,
            Membership.organization_id == ApiToken.organization_id,
        ),
    )
    .outerjoin(ServiceAccount, ServiceAccount.id == ApiToken.service_account_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


async def principal_from_token(
    session: AsyncSession, token: str, cache: TokenCache | None = None
) -> Principal:
    """The principal of an API token; 401 if it does not hold. One query, the token with
    its owner (a user and their membership, or a service account), unless `cache` still
    holds its row: the checks below are made at every use all the same."""
    token_hash = hash_token(token)
    cached = cache.get(token_hash) if cache is not None else None
    ticket = cache.ticket() if cache is not None else None
    found = cached or (await execute_core(session, TOKEN_OWNER, {"token_hash": token_hash})).first()
    if found is None or not same_hash(found.token_hash, token):
        raise _refused("the token is not valid")
    now = utcnow()
    if found.revoked_at is not None:
        raise _refused("the token has been revoked")
    if found.expires_at is not None and found.expires_at <= now:
        raise _refused("the token has expired")
    principal = _owner_of(found)
    if cache is not None and cached is None:
        cache.keep(ticket, token_hash, found)
    if USE_MARKS.due(found.id, found.last_used_at, now):
        # Bookkeeping, as in the audit log: using a token does not give it a new version
        # (ETag), or every use would make a revocation's If-Match stale.
        await session.execute(
            update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now)
        )
        await session.commit()
    return principal


class UseMarks:
    """When this process last recorded each token's use, so that it writes `last_used_at`
    once per `LAST_USED_RESOLUTION`, not once per concurrent request: under load, every
    request in flight when the minute turned read the old time, and all of them queued on
    the token's row lock for a durable commit each."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._written: dict[uuid.UUID, datetime] = {}

    def due(self, token_id: uuid.UUID, last_used_at: datetime | None, now: datetime) -> bool:
        """Whether to write this use; a True is claimed at once (no second writer)."""
        known = [t for t in (last_used_at, self._written.get(token_id)) if t is not None]
        if known and now - max(known) < LAST_USED_RESOLUTION:
            return False
        if len(self._written) >= self.limit:
            self._written.clear()
        self._written[token_id] = now
        return True


USE_MARKS = UseMarks()


def _owner_of(found: Row[*tuple[Any, ...]]) -> Principal:
    """The principal of a row of `TOKEN_OWNER`, or 401 if its owner may no longer act."""
    if found.service_account_id is not None:
        if found.account_name is None or found.account_disabled:
            raise _refused("the token's service account is disabled")
        return Principal(
            kind="service_account",
            name=found.account_name,
            organization_id=found.organization_id,
            role=lower(found.role, found.account_role),
            id=found.service_account_id,
            token_id=found.id,
            scope=found.scope,
        )
    if found.user_id is None or found.user_disabled or found.member_role is None:
        raise _refused("the token's user is disabled or no longer a member")
    return Principal(
        kind="user",
        name=found.user_email or found.user_name,
        organization_id=found.organization_id,
        role=lower(found.role, found.member_role),
        id=found.user_id,
        token_id=found.id,
        scope=found.scope,
    )


async def principal_of_user(
    session: AsyncSession, connection: HTTPConnection, user: User, via: str
) -> Principal:
    """A signed-in user's principal in the organization the request names (header
    `X-Organization-ID`), or in their only or first organization."""
    memberships = (
        (
            await session.execute(
                select(Membership)
                .where(Membership.user_id == user.id)
                .order_by(Membership.created_at)
            )
        )
        .scalars()
        .all()
    )
    if not memberships:
        raise _refused("this user belongs to no organization")
    chosen = memberships[0]
    if wanted := connection.headers.get(ORGANIZATION_HEADER):
        try:
            wanted_id = uuid.UUID(wanted)
        except ValueError:
            raise UnprocessableError(
                f"{ORGANIZATION_HEADER} must be an organization id",
                field=ORGANIZATION_HEADER,
                location="header",
            ) from None
        found = [m for m in memberships if m.organization_id == wanted_id]
        if not found:  # another organization's id: as if it did not exist
            raise _refused("not a member of that organization")
        chosen = found[0]
    return Principal(
        kind="user",
        name=user.email or user.name,
        organization_id=chosen.organization_id,
        role=chosen.role,
        id=user.id,
        via=via,
    )


def from_trusted_proxy(connection: HTTPConnection, settings: Settings) -> bool:
    """Whether the request comes straight from a configured auth proxy."""
    if not settings.auth_proxy_trusted or connection.client is None:
        return False
    try:
        address = ipaddress.ip_address(connection.client.host)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.auth_proxy_trusted
    )


def _refused(reason: str) -> UnauthorizedError:
    return UnauthorizedError(reason, headers=dict(BEARER_CHALLENGE))


def describe(principal: Principal) -> dict[str, Any]:
    """The principal as `GET /api/me` shows it."""
    return {
        "kind": principal.kind,
        "id": str(principal.id) if principal.id else None,
        "name": principal.name,
        "organization_id": str(principal.organization_id),
        "role": principal.role,
        "token_id": str(principal.token_id) if principal.token_id else None,
        "scope": principal.scope,
        "via": principal.via,
    }
