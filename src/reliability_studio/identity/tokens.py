"""API token strings: made random, stored hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "rs_"  # noqa: S105 - what our tokens start with, not a secret
PREFIX_SHOWN = 8  # what a list shows, so that a human can tell tokens apart


def new_token() -> str:
    """A new token: `rs_` and 43 URL-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored: the SHA-256 of the token, hex (long random secrets need no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def shown_prefix(token: str) -> str:
    """The first characters of a token, safe to show."""
    return token[:PREFIX_SHOWN]


def same_hash(stored: str, token: str) -> bool:
    """Whether `token` hashes to `stored`, in time that does not depend on where they differ."""
    return hmac.compare_digest(stored, hash_token(token))
