"""The audit_entries table: one row per resource written through the API. Append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from reliability_studio.db.base import Base, OrganizationOwned, UUIDPrimaryKey, utcnow

# Column sizes; capture.py cuts longer values so that an audit row never fails a write.
ACTOR_KIND_LENGTH = 32
NAME_LENGTH = 200
REQUEST_ID_LENGTH = 128
ACTION_LENGTH = 100
RESOURCE_TYPE_LENGTH = 64


class AuditEntry(UUIDPrimaryKey, OrganizationOwned, Base):
    """Who changed what, when, in which request, with the values before and after.

    `before` and `after` hold only the changed fields of an update, and the whole row of a
    creation (`after`) or a deletion (`before`), secrets redacted. Rows are only inserted:
    nothing in the application updates or deletes them.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        # The list is newest first; each filter has an index ending in the sort key.
        Index("ix_audit_entries_org_occurred", "organization_id", "occurred_at", "id"),
        Index(
            "ix_audit_entries_org_actor_name", "organization_id", "actor_name", "occurred_at", "id"
        ),
        Index("ix_audit_entries_org_actor_id", "organization_id", "actor_id", "occurred_at", "id"),
        Index("ix_audit_entries_org_action", "organization_id", "action", "occurred_at", "id"),
        Index(
            "ix_audit_entries_org_resource",
            "organization_id",
            "resource_type",
            "resource_id",
            "occurred_at",
            "id",
        ),
        Index("ix_audit_entries_org_request", "organization_id", "request_id"),
    )

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(ACTOR_KIND_LENGTH))
    actor_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    actor_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    token_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_LENGTH))
    action: Mapped[str] = mapped_column(String(ACTION_LENGTH))
    resource_type: Mapped[str] = mapped_column(String(RESOURCE_TYPE_LENGTH))
    resource_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
