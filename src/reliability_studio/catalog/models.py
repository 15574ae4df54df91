"""The services table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import (
    Base,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
)


class Service(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """A service in the catalog. Its name is unique within its organization."""

    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index("ix_services_organization_id_team", "organization_id", "team"),
    )

    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    repository_url: Mapped[str | None] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    # Where its telemetry lives (catalog/telemetry.py); None: derived from the name.
    telemetry: Mapped[dict[str, Any] | None]
