"""The short-lived state of single sign-on, kept in the database so that any replica can
finish what another began.

- `login_flows`: one row from `GET /api/auth/oidc/login` to its callback (about ten
  minutes at most): the hash of `state`, the `nonce` and PKCE verifier sent to the
  provider, where to go afterwards, and for a CLI login its loopback port and challenge.
- `cli_login_codes`: one row from the callback of a CLI login to the CLI's
  `POST /api/auth/cli/token` (a minute at most): the hash of the one-time code handed to
  the CLI's loopback listener, and the CLI's PKCE challenge that the exchange must answer.

Both are single use (deleted when used) and swept when expired. Only hashes of the values a
caller presents are stored; the nonce and verifier are ours, sent to the provider only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, UUIDPrimaryKey, utcnow


class LoginFlow(UUIDPrimaryKey, Base):
    """A sign-in sent to the identity provider and not yet back."""

    __tablename__ = "login_flows"

    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str | None] = mapped_column(String(500))
    # A CLI login (RFC 8252): the loopback port to send the one-time code to, the CLI's
    # S256 challenge, and the CLI's own state, echoed back to it.
    cli_port: Mapped[int | None]
    cli_challenge: Mapped[str | None] = mapped_column(String(128))
    cli_state: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class CliLoginCode(UUIDPrimaryKey, Base):
    """A one-time code that a CLI exchanges, with its PKCE verifier, for an API token."""

    __tablename__ = "cli_login_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_challenge: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
