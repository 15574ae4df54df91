"""Request and response bodies of alert ingestion, alerts and alert groups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from reliability_studio.api.fields import NoNul, Timestamp, Title

AlertStatus = Literal["firing", "resolved"]
GroupStatus = Literal["pending", "open", "closed"]
MAX_LABELS = 100

LabelName = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
LabelValue = Annotated[str, StringConstraints(max_length=4000), NoNul]
# Alertmanager writes Go's zero time (0001-01-01T00:00:00Z) for "no end yet".
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _no_zero_time(value: datetime | None) -> datetime | None:
    return None if value is None or value <= ZERO_TIME else value


OptionalTime = Annotated[Timestamp | None, AfterValidator(_no_zero_time)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Fingerprint = Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul]
Url = Annotated[str, StringConstraints(max_length=4000), NoNul]


class AlertIn(BaseModel):
    """One alert from any source: `POST /api/alerts`."""

    model_config = ConfigDict(extra="forbid")

    title: Title = Field(examples=["Checkout error rate above 5%"])
    severity: Annotated[str, StringConstraints(max_length=64), NoNul] | None = Field(
        default=None, examples=["critical"], description="Copied to the `severity` label."
    )
    status: AlertStatus = "firing"
    labels: Labels = Field(default_factory=dict, examples=[{"service": "checkout"}])
    annotations: Labels = Field(default_factory=dict)
    fingerprint: Fingerprint | None = Field(
        default=None, description="Defaults to Alertmanager's hash of the sorted labels."
    )
    starts_at: OptionalTime = Field(default=None, description="Defaults to now.")
    ends_at: OptionalTime = None
    generator_url: Url | None = None


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager (or Grafana) webhook message."""

    model_config = ConfigDict(extra="ignore")

    status: AlertStatus
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: OptionalTime = None  # noqa: N815 - Alertmanager's field names
    endsAt: OptionalTime = None  # noqa: N815
    generatorURL: Url | None = None  # noqa: N815
    fingerprint: Fingerprint | None = None


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload, version 4 (Grafana's variant has the same alerts)."""

    model_config = ConfigDict(extra="ignore")

    # Bounded and NUL-free like every other text field, though only the alerts are stored.
    version: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None
    status: AlertStatus | None = None
    receiver: LabelValue | None = None
    groupKey: LabelValue | None = None  # noqa: N815
    truncatedAlerts: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0  # noqa: N815
    externalURL: Url | None = None  # noqa: N815
    alerts: list[WebhookAlert]


class IngestSummary(BaseModel):
    """What one ingestion request did."""

    received: int
    created: int = Field(description="New alerts: first firing, or firing again.")
    updated: int = Field(description="Known alerts that changed, e.g. resolved.")
    duplicates: int = Field(description="Identical repeats: only last_seen_at moved on.")
    stale: int = Field(description="Older than what is known, e.g. a firing after its resolved.")
    alert_ids: list[uuid.UUID]
    unknown_services: list[str] = Field(
        description="Service label values that name no catalog service."
    )


class AlertOut(BaseModel):
    """An alert occurrence, as stored."""

    id: uuid.UUID
    fingerprint: str
    integration: str
    status: AlertStatus
    title: str
    severity: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    starts_at: datetime
    ends_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    receive_count: int
    service_id: uuid.UUID | None
    service_name: str | None
    alert_group_id: uuid.UUID | None
    incident_id: uuid.UUID | None
    correlated: bool = Field(description="Whether the correlator has acted on its latest state.")


class AlertGroupOut(BaseModel):
    """A correlation group: alerts of one rule and key, and their incident."""

    id: uuid.UUID
    rule_id: uuid.UUID | None
    rule_name: str
    group_key: str
    group_labels: dict[str, str]
    status: GroupStatus
    incident_id: uuid.UUID | None
    previous_incident_id: uuid.UUID | None
    severity: str
    first_alert_at: datetime
    last_alert_at: datetime
    alert_count: int
    firing_count: int
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
