"""Single sign-on on the database: login flows, users from claims, CLI codes and tokens.

Plain functions on an `AsyncSession`; the router commits. The HTTP side of the provider is
`oidc.py`, the role mapping `oidc_roles.py`.
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.problems import ConflictError, ForbiddenError, ProblemError
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.identity.models import ApiToken, Membership, User
from reliability_studio.identity.oidc import new_code_verifier, verify_code_challenge
from reliability_studio.identity.oidc_models import CliLoginCode, LoginFlow
from reliability_studio.identity.oidc_roles import groups_of, role_for
from reliability_studio.identity.sessions import hash_secret, new_secret
from reliability_studio.identity.tokens import hash_token, new_token, shown_prefix
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

log = logging.getLogger("reliability_studio.auth")

CLI_CODE_TTL = timedelta(seconds=60)
# A path of this server, never another origin (`//host`, `/\host`) nor a control character.
SAFE_RETURN_TO = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")


class InvalidGrantError(ProblemError):
    """A CLI code that is unknown, used, expired, or whose verifier does not match."""

    status = 400
    title = "Bad Request"


@dataclass(frozen=True)
class StartedLogin:
    """What the login endpoint sends the browser to the provider with."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class IssuedToken:
    """A new personal API token: its value is shown once, here only."""

    token: str
    row: ApiToken
    user: User


def is_safe_return_to(value: str) -> bool:
    """Whether `value` is a local path that a login may return to."""
    return len(value) <= 500 and SAFE_RETURN_TO.match(value) is not None


async def start_login(
    db: AsyncSession,
    settings: Settings,
    *,
    return_to: str | None = None,
    cli_port: int | None = None,
    cli_challenge: str | None = None,
    cli_state: str | None = None,
    now: datetime | None = None,
) -> StartedLogin:
    """Record a new login flow (and sweep expired ones); not committed."""
    now = now or utcnow()
    await sweep_expired(db, now)
    started = StartedLogin(
        state=new_secret(), nonce=new_secret(), code_verifier=new_code_verifier()
    )
    db.add(
        LoginFlow(
            state_hash=hash_secret(started.state),
            nonce=started.nonce,
            code_verifier=started.code_verifier,
            return_to=return_to,
            cli_port=cli_port,
            cli_challenge=cli_challenge,
            cli_state=cli_state,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.oidc_login_timeout_seconds),
        )
    )
    await db.flush()
    return started


async def take_login_flow(
    db: AsyncSession, state: str, *, now: datetime | None = None
) -> LoginFlow | None:
    """The live flow of `state`, removed so that it serves once (not committed); or None."""
    now = now or utcnow()
    flow = await db.scalar(select(LoginFlow).where(LoginFlow.state_hash == hash_secret(state)))
    if flow is None:
        return None
    result = await db.execute(delete(LoginFlow).where(LoginFlow.id == flow.id))
    if not getattr(result, "rowcount", 0):  # another request took it first
        return None
    if flow.expires_at <= now:
        return None
    return flow


async def sweep_expired(db: AsyncSession, now: datetime) -> None:
    """Delete login flows and CLI codes past their expiry."""
    await db.execute(delete(LoginFlow).where(LoginFlow.expires_at <= now))
    await db.execute(delete(CliLoginCode).where(CliLoginCode.expires_at <= now))


# --- users from claims ----------------------------------------------------------------------


async def provision_user(
    db: AsyncSession,
    settings: Settings,
    claims: dict[str, Any],
    *,
    now: datetime | None = None,
) -> tuple[User, str]:
    """The user these verified claims describe, created or updated, with their role in the
    default organization set from their groups (not committed).

    Refused (403) when no group maps to a role and there is no default role, or when the
    user is disabled; refused (409) when the email belongs to another user and linking by
    email is off (or the provider does not say the email is verified).
    """
    now = now or utcnow()
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    groups = groups_of(claims, settings.oidc_groups_claim)
    role = role_for(groups, settings.oidc_role_map, settings.oidc_default_role)
    if role is None:
        log.warning(
            "sign-in refused: no role",
            extra={"issuer": issuer, "subject": subject, "groups": groups[:20]},
        )
        raise ForbiddenError(
            "Your identity provider account is in no group that grants a role here "
            f"(claim `{settings.oidc_groups_claim}`), and there is no default role."
        )
    email = _email_of(claims)
    name = _name_of(claims, email, subject)

    user = await db.scalar(
        select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    )
    holder = await db.scalar(select(User).where(User.email == email)) if email else None
    if user is None and holder is not None:
        linkable = (
            settings.oidc_link_by_email
            and claims.get("email_verified") is True
            and holder.oidc_subject is None
        )
        if not linkable:
            raise ConflictError(
                "A user with this email already exists and is not linked to this identity "
                "provider account (see OIDC_LINK_BY_EMAIL)."
            )
        user = holder
        log.info("linked an existing user by email", extra={"user_id": str(user.id)})
    if user is None:
        user = User(name=name, email=email, oidc_issuer=issuer, oidc_subject=subject)
        db.add(user)
        log.info("user created from single sign-on", extra={"issuer": issuer})
    if user.disabled:
        raise ForbiddenError("This user is disabled.")
    user.oidc_issuer, user.oidc_subject = issuer, subject
    user.name = name
    if email and (holder is None or holder.id == user.id):
        user.email = email
    user.last_login_at = now
    await db.flush()

    membership = await db.get(Membership, (user.id, DEFAULT_ORGANIZATION_ID))
    if membership is None:
        db.add(Membership(user_id=user.id, organization_id=DEFAULT_ORGANIZATION_ID, role=role))
    elif membership.role != role:
        log.info(
            "role changed by single sign-on",
            extra={"user_id": str(user.id), "from": membership.role, "to": role},
        )
        membership.role = role
    await db.flush()
    return user, role


def _email_of(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    if isinstance(email, str) and "@" in email and len(email) <= 320:
        return email
    return None


def _name_of(claims: dict[str, Any], email: str | None, subject: str) -> str:
    for key in ("name", "preferred_username"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return (email or subject)[:200]


# --- CLI login ------------------------------------------------------------------------------


async def issue_cli_code(
    db: AsyncSession,
    user: User,
    code_challenge: str,
    *,
    organization_id: uuid.UUID = DEFAULT_ORGANIZATION_ID,
    now: datetime | None = None,
) -> str:
    """A one-time code for the CLI's loopback listener (not committed)."""
    now = now or utcnow()
    code = new_secret()
    db.add(
        CliLoginCode(
            code_hash=hash_secret(code),
            code_challenge=code_challenge,
            user_id=user.id,
            organization_id=organization_id,
            created_at=now,
            expires_at=now + CLI_CODE_TTL,
        )
    )
    await db.flush()
    return code


async def redeem_cli_code(
    db: AsyncSession,
    settings: Settings,
    *,
    code: str,
    code_verifier: str,
    token_name: str,
    now: datetime | None = None,
) -> IssuedToken:
    """Trade a one-time code and its PKCE verifier for a personal API token (not committed).

    The code is spent by the first attempt, right or wrong, so it cannot be guessed at.
    """
    now = now or utcnow()
    row = await db.scalar(select(CliLoginCode).where(CliLoginCode.code_hash == hash_secret(code)))
    refused = InvalidGrantError(
        "The login code is unknown, used or expired, or the code verifier does not match.",
        extensions={"error": "invalid_grant"},
    )
    if row is None:
        raise refused
    result = await db.execute(delete(CliLoginCode).where(CliLoginCode.id == row.id))
    if not getattr(result, "rowcount", 0):
        raise refused
    if row.expires_at <= now or not verify_code_challenge(code_verifier, row.code_challenge):
        await db.commit()  # the code stays spent
        raise refused
    user = await db.get(User, row.user_id)
    membership = await db.get(Membership, (row.user_id, row.organization_id))
    if user is None or user.disabled or membership is None:
        await db.commit()
        raise ForbiddenError("This user may no longer sign in here.")
    token = new_token()  # `rs_` + 43 URL-safe characters, as every API token
    api_token = ApiToken(
        organization_id=row.organization_id,
        name=token_name,
        user_id=user.id,
        role=membership.role,
        scope="api",
        token_hash=hash_token(token),
        prefix=shown_prefix(token),
        created_at=now,
        created_by=(user.email or user.name)[:200],
        expires_at=now + timedelta(days=settings.cli_token_lifetime_days),
    )
    db.add(api_token)
    await db.flush()
    log.info(
        "personal API token issued to the CLI",
        extra={"user_id": str(user.id), "token_id": str(api_token.id), "role": membership.role},
    )
    return IssuedToken(token=token, row=api_token, user=user)


def constant_time_equal(a: str, b: str) -> bool:
    """Compare two secrets without leaking where they differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
