"""Browser sessions (after single sign-on): create, look up, revoke; and their cookie.

Behaviour (OWASP ASVS 4.0 level 2, V3):
- The session id is 32 random bytes (base64url), sent only in an HttpOnly cookie with
  SameSite=Lax, Secure (and the `__Host-` name prefix) when the server is reached over
  HTTPS. The table keeps its SHA-256, never the id (V3.2.1-3).
- A new id at every login; a session the browser still held is revoked then (V3.2.1).
- An absolute lifetime (`SESSION_LIFETIME_SECONDS`, 12 h by default) and an idle timeout
  (`SESSION_IDLE_TIMEOUT_SECONDS`, 1 h) (V3.3.1-2); logout revokes it server-side (V3.3.1).
- A disabled user's sessions stop working at once.

`principal_from_session` is what request authentication calls with the cookie's value.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.identity.models import BrowserSession, Membership, User

SESSION_COOKIE = "rs_session"
# Over HTTPS: no Domain, Path=/ and Secure are then guaranteed by the browser.
SECURE_SESSION_COOKIE = "__Host-rs_session"
# `last_seen_at` is written at most this often (or a quarter of the idle timeout, if
# shorter), so that a busy browser does not cost a write per request.
TOUCH_INTERVAL = timedelta(seconds=60)


def new_secret() -> str:
    """32 random bytes, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """The SHA-256 hex digest under which a token or session id is stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionPrincipal:
    """Who a valid session belongs to, and their roles per organization."""

    user: User
    memberships: list[Membership]
    session_id: uuid.UUID

    def role_in(self, organization_id: uuid.UUID) -> str | None:
        """The user's role in `organization_id`, or None."""
        return next(
            (m.role for m in self.memberships if m.organization_id == organization_id), None
        )


async def create_session(
    db: AsyncSession,
    user_id: uuid.UUID,
    settings: Settings,
    *,
    replaces: str | None = None,
    now: datetime | None = None,
) -> str:
    """Start a session for `user_id` (not committed); returns the cookie value.

    `replaces` is the session cookie the browser sent, if any: that session is revoked, so
    that a login always ends with a new id (no session fixation).
    """
    now = now or utcnow()
    if replaces:
        await _revoke(db, replaces, now)
    value = new_secret()
    db.add(
        BrowserSession(
            user_id=user_id,
            token_hash=hash_secret(value),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=settings.session_lifetime_seconds),
        )
    )
    await db.flush()
    return value


async def principal_from_session(
    db: AsyncSession,
    cookie_value: str,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> SessionPrincipal | None:
    """The user behind a session cookie, or None if the session is unknown, revoked, past
    its absolute lifetime, idle for longer than the idle timeout, or its user is disabled.

    A valid session's `last_seen_at` is moved to now (at most once per `TOUCH_INTERVAL`)
    and that write is committed here, so call this before the request's own work.
    """
    if not cookie_value or len(cookie_value) > 256:
        return None
    now = now or utcnow()
    row = (
        await db.execute(
            select(BrowserSession, User)
            .join(User, User.id == BrowserSession.user_id)
            .where(BrowserSession.token_hash == hash_secret(cookie_value))
        )
    ).first()
    if row is None:
        return None
    browser_session, user = row
    idle = timedelta(seconds=settings.session_idle_timeout_seconds)
    if (
        browser_session.revoked_at is not None
        or browser_session.expires_at <= now
        or now - browser_session.last_seen_at >= idle
        or user.disabled
    ):
        return None
    if now - browser_session.last_seen_at >= min(TOUCH_INTERVAL, idle / 4):
        await db.execute(
            update(BrowserSession)
            .where(BrowserSession.id == browser_session.id)
            .values(last_seen_at=now)
        )
        await db.commit()
    memberships = list(
        (await db.scalars(select(Membership).where(Membership.user_id == user.id))).all()
    )
    return SessionPrincipal(user=user, memberships=memberships, session_id=browser_session.id)


async def revoke_session(db: AsyncSession, cookie_value: str) -> bool:
    """Revoke the session of `cookie_value` and commit; whether one was live."""
    revoked = await _revoke(db, cookie_value, utcnow())
    await db.commit()
    return revoked


async def _revoke(db: AsyncSession, cookie_value: str, now: datetime) -> bool:
    result = await db.execute(
        update(BrowserSession)
        .where(
            BrowserSession.token_hash == hash_secret(cookie_value),
            BrowserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


# --- the cookie -------------------------------------------------------------------------------


def read_session_cookie(cookies: Mapping[str, str]) -> str | None:
    """The session cookie's value from a request's cookies, if any."""
    return cookies.get(SECURE_SESSION_COOKIE) or cookies.get(SESSION_COOKIE) or None


def set_session_cookie(response: Response, value: str, settings: Settings, secure: bool) -> None:
    """Send the session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS, Path=/, and a
    Max-Age of the absolute lifetime."""
    response.set_cookie(
        SECURE_SESSION_COOKIE if secure else SESSION_COOKIE,
        value,
        max_age=settings.session_lifetime_seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    """Tell the browser to forget the session cookie."""
    for name in (SESSION_COOKIE, SECURE_SESSION_COOKIE) if secure else (SESSION_COOKIE,):
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
