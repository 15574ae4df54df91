"""The actor of the current request, for code that runs below the HTTP layer.

The API binds it once per request (`bind_request_actor`); the audit log and anything else
that must attribute a write read it from `current_actor`. Background jobs have none: their
writes are the system's own.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who makes the writes of this request."""

    kind: str  # user, service_account, integration, anonymous
    name: str
    organization_id: uuid.UUID
    id: str | None = None
    token_id: str | None = None
    request_id: str | None = None


current_actor: ContextVar[Actor | None] = ContextVar("current_actor", default=None)
