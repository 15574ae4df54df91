"""The incidents and incident_services tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reliability_studio.catalog.models import Service
from reliability_studio.db.base import (
    Base,
    OrganizationOwned,
    Timestamps,
    UUIDPrimaryKey,
    Versioned,
    one_of,
    utcnow,
)
from reliability_studio.incidents.lifecycle import SEVERITIES, STATUSES


class IncidentService(OrganizationOwned, Base):
    """Links an incident to an affected service."""

    __tablename__ = "incident_services"
    __table_args__ = (
        # The primary key serves lookups by incident; this one serves `?service_id=`.
        Index("ix_incident_services_service_id_incident_id", "service_id", "incident_id"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="RESTRICT"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Incident(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """An incident, from detection to closure."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
        CheckConstraint(one_of("status", STATUSES), name="status"),
        # One index per list filter, each ending in the sort key (created_at, id).
        Index("ix_incidents_org_created", "organization_id", "created_at", "id"),
        Index("ix_incidents_org_status_created", "organization_id", "status", "created_at", "id"),
        Index(
            "ix_incidents_org_severity_created", "organization_id", "severity", "created_at", "id"
        ),
        Index(
            "ix_incidents_org_status_severity_created",
            "organization_id",
            "status",
            "severity",
            "created_at",
            "id",
        ),
    )

    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    root_cause: Mapped[str | None] = mapped_column(Text)
    commander: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    # Read-only view of the linked services; links are written as IncidentService rows.
    services: Mapped[list[Service]] = relationship(
        secondary="incident_services",
        viewonly=True,
        lazy="raise",
        order_by=Service.name,
    )
