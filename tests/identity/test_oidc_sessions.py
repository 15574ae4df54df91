"""Specification of browser sessions: absolute lifetime, idle timeout, revocation, and
what `principal_from_session` touches. Time is passed in, not waited for."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.identity.oidc_helpers import in_database, principal

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.identity.models import BrowserSession, Membership, User
from reliability_studio.identity.sessions import create_session, hash_secret, revoke_session
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _session_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"session_lifetime_seconds": 12 * 3600, "session_idle_timeout_seconds": 3600}
    )


def _new_session(settings: Settings, at: datetime, *, disabled: bool = False) -> str:
    async def create(session: AsyncSession) -> str:
        user = User(name="Erin", email=f"erin-{uuid.uuid4().hex[:6]}@example.com")
        user.disabled = disabled
        session.add(user)
        await session.flush()
        session.add(
            Membership(user_id=user.id, organization_id=DEFAULT_ORGANIZATION_ID, role="viewer")
        )
        cookie = await create_session(session, user.id, settings, now=at)
        await session.commit()
        return cookie

    return in_database(settings, create)


def _last_seen(settings: Settings, cookie: str) -> datetime:
    async def load(session: AsyncSession) -> datetime:
        row = await session.scalar(
            select(BrowserSession).where(BrowserSession.token_hash == hash_secret(cookie))
        )
        assert row is not None
        return row.last_seen_at

    return in_database(settings, load)


def test_a_session_ends_after_the_idle_timeout(settings: Settings) -> None:
    settings = _session_settings(settings)
    start = utcnow()
    cookie = _new_session(settings, start)

    assert principal(settings, cookie, now=start + 50 * MINUTE) is not None
    assert _last_seen(settings, cookie) == start + 50 * MINUTE  # activity is recorded
    # Active 50 minutes ago: still inside the hour.
    assert principal(settings, cookie, now=start + 100 * MINUTE) is not None
    # Then an hour of silence ends it.
    assert principal(settings, cookie, now=start + 160 * MINUTE) is None
    assert principal(settings, cookie, now=start + 161 * MINUTE) is None


def test_a_session_ends_at_its_absolute_lifetime_however_active(settings: Settings) -> None:
    settings = _session_settings(settings)
    start = utcnow()
    cookie = _new_session(settings, start)

    moment = start
    while moment < start + 12 * HOUR - 30 * MINUTE:
        moment += 30 * MINUTE
        assert principal(settings, cookie, now=moment) is not None, moment - start
    assert principal(settings, cookie, now=start + 12 * HOUR - MINUTE) is not None
    assert principal(settings, cookie, now=start + 12 * HOUR) is None


def test_last_seen_is_written_at_most_once_a_minute(settings: Settings) -> None:
    settings = _session_settings(settings)
    start = utcnow()
    cookie = _new_session(settings, start)
    assert principal(settings, cookie, now=start + 30 * timedelta(seconds=1)) is not None
    assert _last_seen(settings, cookie) == start
    assert principal(settings, cookie, now=start + 61 * timedelta(seconds=1)) is not None
    assert _last_seen(settings, cookie) == start + timedelta(seconds=61)


def test_revoked_unknown_and_disabled_sessions_are_refused(settings: Settings) -> None:
    settings = _session_settings(settings)
    now = utcnow()
    cookie = _new_session(settings, now)
    found = principal(settings, cookie, now=now)
    assert found is not None
    assert found.role_in(DEFAULT_ORGANIZATION_ID) == "viewer"

    assert in_database(settings, lambda session: revoke_session(session, cookie)) is True
    assert principal(settings, cookie, now=now) is None
    assert in_database(settings, lambda session: revoke_session(session, cookie)) is False

    assert principal(settings, "not-a-session", now=now) is None
    assert principal(settings, "", now=now) is None
    assert principal(settings, _new_session(settings, now, disabled=True), now=now) is None
