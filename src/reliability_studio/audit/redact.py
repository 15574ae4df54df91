"""Which values of an audit entry are secrets, and their replacement. Pure: no I/O.

A value is a secret when its key is one of the notification channels' secret fields
(`token`, `secret`, `password`, `routing_key`, `webhook_url`), or when any word of its key
names one: token, secret, password, key, hash, credential and a few spellings of them
(`token_hash`, `api_key`, `apiKey`, `client_secret`, `X-Integration-Token`, ...). Words,
not substrings, so that `monkey` or `hashtag`-like names stay readable. Secrets are found
at any depth (a channel's `config`, a timeline event's `metadata`) and replaced whole;
a secret that is not set (null) stays null, since that it is unset is no secret.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

# The notification channels' secret fields (notify/schemas.py SECRET_FIELDS), by name.
SECRET_NAMES = frozenset({"token", "secret", "password", "routing_key", "webhook_url"})
SECRET_WORDS = frozenset(
    {
        "token",
        "tokens",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "key",
        "apikey",
        "hash",
        "credential",
        "credentials",
        "authorization",
    }
)
# Words of snake_case, kebab-case, camelCase and UPPER_CASE names alike.
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret(name: str) -> bool:
    """Whether a value stored under `name` is a secret."""
    if name.lower() in SECRET_NAMES:
        return True
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(name))


def redact(value: Any) -> Any:
    """`value` with every secret, at any depth, replaced by `REDACTED` (a new structure)."""
    if isinstance(value, dict):
        return {
            key: REDACTED if item is not None and is_secret(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
