"""The notification_channels, notification_policies and notifications tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    JSONDocument,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
    one_of,
)

CHANNEL_KINDS = ("slack_webhook", "slack", "pagerduty", "webhook", "email")


class NotificationChannel(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """Somewhere notifications go. `config` holds its settings, secrets included; the API
    never shows the secrets back (see schemas.py)."""

    __tablename__ = "notification_channels"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint(one_of("kind", CHANNEL_KINDS), name="kind"),
    )

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]]


class NotificationPolicy(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """Which events go to which channels (see policies.py for the matching rules)."""

    __tablename__ = "notification_policies"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    events: Mapped[list[str]] = mapped_column(JSONDocument)
    min_severity: Mapped[str | None] = mapped_column(String(16))
    services: Mapped[list[str]] = mapped_column(JSONDocument)
    teams: Mapped[list[str]] = mapped_column(JSONDocument)
    channel_ids: Mapped[list[str]] = mapped_column(JSONDocument)


NOTIFICATION_STATUSES = ("pending", "delivering", "delivered", "dead")


class Notification(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """One event for one channel: the outbox row, written in the transaction of the change
    that caused it, and the delivery log once the dispatcher has tried it.

    Its id is the idempotency key receivers see, so a delivery retried after a crash is
    recognisable as a repeat."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(one_of("status", NOTIFICATION_STATUSES), name="status"),
        # The dispatcher's queue: only undelivered rows are in this index.
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'delivering')"),
            sqlite_where=text("status IN ('pending', 'delivering')"),
        ),
        Index("ix_notifications_org_created", "organization_id", "created_at", "id"),
        Index("ix_notifications_channel_incident", "channel_id", "incident_id"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    # What the receiver returned that later deliveries need (Slack's thread ts).
    thread: Mapped[dict[str, Any] | None]
