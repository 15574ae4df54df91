"""Identity from a trusted authenticating proxy (oauth2-proxy, Grafana's auth.proxy style).

Only requests that come straight from `AUTH_PROXY_TRUSTED` addresses may name their user
in a header; from anywhere else the headers are ignored. A user the proxy names for the
first time is created, with the role the proxy's role header gives (viewer if none) in
the default organization.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.identity.authenticate import Principal, principal_of_user
from reliability_studio.identity.models import ROLES, Membership, User
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID


async def principal_from_proxy(
    session: AsyncSession, connection: HTTPConnection, settings: Settings
) -> Principal | None:
    """The user the trusted proxy names, or None when it names nobody."""
    name = connection.headers.get(settings.auth_proxy_user_header, "").strip()[:200]
    if not name:
        return None
    email = connection.headers.get(settings.auth_proxy_email_header, "").strip()[:320] or None
    role = connection.headers.get(settings.auth_proxy_role_header, "").strip().lower()
    user = (
        await session.execute(select(User).where(User.name == name, User.oidc_issuer.is_(None)))
    ).scalar_one_or_none()
    if user is None:
        user = User(name=name, email=email, last_login_at=utcnow())
        session.add(user)
        await session.flush()
    membership = await session.get(Membership, (user.id, DEFAULT_ORGANIZATION_ID))
    if role in ROLES:
        if membership is None:
            session.add(
                Membership(user_id=user.id, organization_id=DEFAULT_ORGANIZATION_ID, role=role)
            )
        elif membership.role != role:
            membership.role = role  # the proxy's groups are the source of truth
    elif membership is None:
        session.add(
            Membership(user_id=user.id, organization_id=DEFAULT_ORGANIZATION_ID, role="viewer")
        )
    await session.commit()
    return await principal_of_user(session, connection, user, via="proxy")
