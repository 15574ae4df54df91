"""The organizations table."""

from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, Timestamps, UUIDPrimaryKey, Versioned

# Until organizations are managed through the API, everything belongs to this one.
# The first migration creates it with this id.
DEFAULT_ORGANIZATION_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


class Organization(UUIDPrimaryKey, Timestamps, Versioned, Base):
    """A tenant: the unit of data isolation."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
