"""The alerts, alert_groups and correlation_rules tables."""

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
from reliability_studio.incidents.lifecycle import SEVERITIES

ALERT_STATUSES = ("firing", "resolved")
INTEGRATIONS = ("alertmanager", "grafana", "api")
GROUP_STATUSES = ("pending", "open", "closed")
RULE_ACTIONS = ("open_incident", "record_only")
RESOLVE_POLICIES = ("monitoring", "resolved", "manual")


class Alert(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """One occurrence of an alert: from its first firing message until it resolves.

    Repeats of the same fingerprint update this row. When an alert fires again after it
    resolved, a new row starts and the old one stops being the latest (`is_latest`), so
    that each fingerprint has exactly one latest row to deduplicate against.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(one_of("status", ALERT_STATUSES), name="status"),
        CheckConstraint(one_of("integration", INTEGRATIONS), name="integration"),
        # The deduplication lookup, and the guard against two concurrent first firings.
        # One column on purpose: PostgreSQL then knows that each value matches at most one
        # row even before the table has statistics (a storm into a fresh table), and looks
        # fingerprints up by this index instead of scanning the organization's alerts.
        Index(
            "uq_alerts_latest_dedup_key",
            "dedup_key",
            unique=True,
            postgresql_where=text("is_latest"),
            sqlite_where=text("is_latest"),
        ),
        Index("ix_alerts_org_fingerprint_starts", "organization_id", "fingerprint", "starts_at"),
        # The correlator's queue: only rows waiting for it are in this index.
        Index(
            "ix_alerts_needs_correlation",
            "updated_at",
            "id",
            postgresql_where=text("needs_correlation"),
            sqlite_where=text("needs_correlation"),
        ),
        # One index per list filter, each ending in the sort key (starts_at, id).
        Index("ix_alerts_org_starts", "organization_id", "starts_at", "id"),
        Index("ix_alerts_org_status_starts", "organization_id", "status", "starts_at", "id"),
        Index("ix_alerts_org_service_starts", "organization_id", "service_name", "starts_at", "id"),
        Index("ix_alerts_incident_starts", "incident_id", "starts_at", "id"),
        Index("ix_alerts_group", "alert_group_id"),
    )

    fingerprint: Mapped[str] = mapped_column(String(128))
    # "<organization id hex>:<fingerprint>", see `dedup_key()`.
    dedup_key: Mapped[str] = mapped_column(String(170))
    integration: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str | None] = mapped_column(String(64))
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    generator_url: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    receive_count: Mapped[int] = mapped_column(Integer, default=1)
    is_latest: Mapped[bool] = mapped_column(default=True)
    service_name: Mapped[str | None] = mapped_column(String(200))
    service_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL")
    )
    alert_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alert_groups.id", ondelete="SET NULL")
    )
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    # What the correlator last acted on: None (nothing yet), firing or resolved.
    correlated_status: Mapped[str | None] = mapped_column(String(16))
    needs_correlation: Mapped[bool] = mapped_column(default=True)


def dedup_key(organization_id: uuid.UUID, fingerprint: str) -> str:
    """The organization-scoped key that identifies an alert across its repeats."""
    return f"{organization_id.hex}:{fingerprint}"


class AlertGroup(UUIDPrimaryKey, OrganizationOwned, Timestamps, Base):
    """Alerts of one correlation rule and group key, and the incident they share.

    `pending` until the rule's threshold is met, `open` with its incident, `closed` once
    its window or the incident's age has passed or the incident has ended. The storm
    counters keep the incident's timeline bounded: after `detail_events` individual alert
    events, alerts are summed into one summary at most every so often.
    """

    __tablename__ = "alert_groups"
    __table_args__ = (
        CheckConstraint(one_of("status", GROUP_STATUSES), name="status"),
        # One group that can still take alerts per rule and key.
        Index(
            "uq_alert_groups_live_key",
            "organization_id",
            "rule_id",
            "group_key",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_alert_groups_org_created", "organization_id", "created_at", "id"),
        Index("ix_alert_groups_incident", "incident_id"),
        Index(
            "ix_alert_groups_unsummarised",
            "last_summary_at",
            postgresql_where=text("unsummarised_firing + unsummarised_resolved > 0"),
            sqlite_where=text("unsummarised_firing + unsummarised_resolved > 0"),
        ),
    )

    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("correlation_rules.id", ondelete="SET NULL")
    )
    rule_name: Mapped[str] = mapped_column(String(200))
    group_key: Mapped[str] = mapped_column(String(2000))
    group_labels: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    previous_incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    severity: Mapped[str] = mapped_column(String(16))
    first_alert_at: Mapped[datetime]
    last_alert_at: Mapped[datetime]
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    firing_count: Mapped[int] = mapped_column(Integer, default=0)
    detail_events: Mapped[int] = mapped_column(Integer, default=0)
    unsummarised_firing: Mapped[int] = mapped_column(Integer, default=0)
    unsummarised_resolved: Mapped[int] = mapped_column(Integer, default=0)
    unsummarised_names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_summary_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class CorrelationRule(UUIDPrimaryKey, OrganizationOwned, Timestamps, Versioned, Base):
    """How alerts are grouped into incidents. See docs/alerts.md for each field."""

    __tablename__ = "correlation_rules"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint(one_of("action", RULE_ACTIONS), name="action"),
        CheckConstraint(one_of("resolve_policy", RESOLVE_POLICIES), name="resolve_policy"),
        CheckConstraint(one_of("default_severity", SEVERITIES), name="default_severity"),
        Index("ix_correlation_rules_org_position", "organization_id", "position", "name"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(Integer)
    matchers: Mapped[list[str]] = mapped_column(JSONDocument)
    action: Mapped[str] = mapped_column(String(16))
    group_by: Mapped[list[str]] = mapped_column(JSONDocument)
    window_seconds: Mapped[int] = mapped_column(Integer)
    max_incident_age_seconds: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    severity_label: Mapped[str] = mapped_column(String(200))
    severity_map: Mapped[dict[str, Any]]
    default_severity: Mapped[str] = mapped_column(String(16))
    resolve_policy: Mapped[str] = mapped_column(String(16))
