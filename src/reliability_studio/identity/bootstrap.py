"""The first owner: on a server with no users, one is created with a token.

The token is written to `BOOTSTRAP_TOKEN_FILE`, readable by the server's user only, and
printed once to the terminal when there is one (never to the logs). `BOOTSTRAP_TOKEN`
fixes its value, for automation. Servers starting together take turns (an advisory lock
on PostgreSQL), so exactly one owner is made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.identity.models import ApiToken, Membership, User
from reliability_studio.identity.tokens import hash_token, new_token, shown_prefix
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

OWNER_NAME = "owner"
LOCK_ID = 7_230_001  # pg_advisory_xact_lock key of the bootstrap


async def bootstrap_owner(settings: Settings) -> str | None:
    """Create the owner and their token if there is no user yet; the token, or None."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            token = await _create_owner(session, settings)
    finally:
        await engine.dispose()
    if token is not None:
        write_token_file(settings.bootstrap_token_file, token)
    return token


async def _create_owner(session: AsyncSession, settings: Settings) -> str | None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SELECT pg_advisory_xact_lock({LOCK_ID})"))
    if await session.scalar(select(func.count()).select_from(User)):
        return None
    fixed = settings.bootstrap_token
    token = fixed.get_secret_value() if fixed is not None else new_token()
    owner = User(name=OWNER_NAME)
    session.add(owner)
    await session.flush()
    session.add(Membership(user_id=owner.id, organization_id=DEFAULT_ORGANIZATION_ID, role="owner"))
    session.add(
        ApiToken(
            organization_id=DEFAULT_ORGANIZATION_ID,
            name="bootstrap",
            user_id=owner.id,
            role="owner",
            scope="api",
            token_hash=hash_token(token),
            prefix=shown_prefix(token),
            created_by="bootstrap",
        )
    )
    await session.commit()
    return token


def write_token_file(path: Path, token: str) -> None:
    """Write `token` to `path`, readable and writable by this user only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    path.chmod(0o600)  # also when the file was there before, with wider rights


def announce(token: str, path: Path) -> None:
    """Show the owner's token once, on the terminal only: logs must never hold a token."""
    message = f"the owner's API token was written to {path}"
    if sys.stderr.isatty():
        message += f": {token}\n(shown this once; keep it secret)"
    print(message, file=sys.stderr)
