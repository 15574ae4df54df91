"""What every channel sender receives and how it reports failure. Pure data.

A sender either returns a `Delivered` (with whatever the receiver gave back that later
messages need, such as Slack's thread `ts`), or raises:

- `RetryableDeliveryError` for what may work later (timeouts, 5xx, 429), with the wait the
  receiver asked for (`Retry-After`) when it asked;
- `PermanentDeliveryError` for what will not (4xx other than 429, a bad configuration).

The dispatcher decides backoff and dead letters; senders never sleep or retry themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventType = Literal[
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "slo.burn_rate",
    "task.assigned",
]


@dataclass(frozen=True)
class Notification:
    """One event to deliver to one channel.

    `id` is the idempotency key: a receiver that sees it twice can drop the repeat.
    `resource` is the API shape of what changed (an incident, an SLO, a task).
    `thread` carries what an earlier delivery about the same incident returned (Slack's
    `ts`), so that follow-ups thread under the first message.
    """

    id: uuid.UUID
    event: EventType
    occurred_at: datetime
    incident_id: uuid.UUID | None
    title: str
    severity: str | None
    status: str | None
    services: list[str]
    url: str | None
    resource: dict[str, Any]
    thread: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivered:
    """A successful delivery, and what the receiver returned that later deliveries use."""

    status_code: int
    thread: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """A delivery that did not happen."""


class RetryableDeliveryError(DeliveryError):
    """Try again later; `retry_after_seconds` is the receiver's own request, if any."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help (a refused request, a broken configuration)."""
