"""The notification_channels and notification_policies tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    JSONDocument,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    one_of,
)

CHANNEL_KINDS = ("slack_webhook", "slack", "pagerduty", "webhook", "email")


class NotificationChannel(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
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


class NotificationPolicy(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
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
