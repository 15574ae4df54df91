"""Ingestion: store a batch of incoming alerts, deduplicated, in one transaction.

The caller commits; once committed the alerts are durable and flagged for the correlator
(`needs_correlation`), which is what makes answering 2xx before correlation safe.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.alerts.dedup import Action, Known, Message, classify
from reliability_studio.alerts.fingerprint import label_fingerprint
from reliability_studio.alerts.models import Alert, dedup_key
from reliability_studio.alerts.schemas import AlertIn, IngestSummary, WebhookAlert
from reliability_studio.audit import capture as audit
from reliability_studio.catalog.models import Service
from reliability_studio.live.capture import alert_change, record, wants_changes
from reliability_studio.live.events import Change

TITLE_ANNOTATIONS = ("summary", "title", "message")


@dataclass(frozen=True)
class IncomingAlert:
    """One alert message, normalised from any source."""

    fingerprint: str
    status: str
    title: str
    severity: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    starts_at: datetime
    starts_at_given: bool
    ends_at: datetime | None


@dataclass(frozen=True)
class ServiceLabels:
    """Which labels name the catalog service, and whether unknown names are created."""

    names: tuple[str, ...] = ("service",)
    create_unknown: bool = False

    def service_of(self, labels: dict[str, str]) -> str | None:
        """The service name an alert's labels give, if any."""
        for name in self.names:
            value = labels.get(name, "").strip()
            if value:
                return value[:200]
        return None


def from_api(alert: AlertIn, now: datetime) -> IncomingAlert:
    """A `POST /api/alerts` body as an incoming alert."""
    labels = dict(alert.labels)
    if alert.severity and "severity" not in labels:
        labels["severity"] = alert.severity
    labels.setdefault("alertname", alert.title)
    return IncomingAlert(
        fingerprint=alert.fingerprint or label_fingerprint(labels),
        status=alert.status,
        title=alert.title,
        severity=labels.get("severity"),
        labels=labels,
        annotations=dict(alert.annotations),
        generator_url=alert.generator_url,
        starts_at=alert.starts_at or now,
        starts_at_given=alert.starts_at is not None,
        ends_at=_end(alert.status, alert.ends_at, now),
    )


def from_webhook(alert: WebhookAlert, now: datetime) -> IncomingAlert:
    """One alert of an Alertmanager or Grafana webhook as an incoming alert."""
    labels = dict(alert.labels)
    title = next(
        (alert.annotations[key] for key in TITLE_ANNOTATIONS if alert.annotations.get(key)),
        labels.get("alertname") or "Alert",
    )
    return IncomingAlert(
        fingerprint=alert.fingerprint or label_fingerprint(labels),
        status=alert.status,
        title=title[:500].strip() or "Alert",
        severity=labels.get("severity"),
        labels=labels,
        annotations=dict(alert.annotations),
        generator_url=alert.generatorURL,
        starts_at=alert.startsAt or now,
        starts_at_given=alert.startsAt is not None,
        ends_at=_end(alert.status, alert.endsAt, now),
    )


def _end(status: str, ends_at: datetime | None, now: datetime) -> datetime | None:
    if status == "firing":
        return None  # Prometheus sends a future "expected end" with firing alerts; not an end
    return ends_at or now


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    stale: int = 0


async def ingest(
    session: AsyncSession,
    organization_id: uuid.UUID,
    integration: str,
    alerts: Sequence[IncomingAlert],
    service_labels: ServiceLabels,
    now: datetime,
) -> tuple[IngestSummary, list[bool]]:
    """Store the alerts (uncommitted); returns the summary and, per alert, whether it is new."""
    services, unknown = await _services(session, organization_id, alerts, service_labels)
    latest = await _latest(session, organization_id, {alert.fingerprint for alert in alerts})
    tally = _Tally()
    ids: list[uuid.UUID] = []
    is_new: list[bool] = []
    created: list[NewAlert] = []
    stored: dict[str, AlertRow] = dict(latest)
    for incoming in alerts:
        known = stored.get(incoming.fingerprint)
        action = classify(_known(known), _message(incoming))
        if action is Action.NEW:
            if known is not None:
                known.is_latest = False  # the old occurrence stops being the latest
            new = _new_row(organization_id, integration, incoming, services, service_labels, now)
            created.append(new)
            stored[incoming.fingerprint] = new
            tally.created += 1
            row: AlertRow = new
        else:
            assert known is not None
            _apply(known, incoming, action, tally, now)
            row = known
        ids.append(row.id)
        is_new.append(action is Action.NEW)
    await session.flush()  # updates first: a superseded row must stop being latest
    if created:
        # Plain rows, not ORM objects: a storm inserts thousands a second.
        await session.execute(insert(Alert), [dataclasses.asdict(row) for row in created])
        if wants_changes(session):
            for row in created:
                record(session, _created_change(row))
    summary = IngestSummary(
        received=len(alerts),
        created=tally.created,
        updated=tally.updated,
        duplicates=tally.duplicates,
        stale=tally.stale,
        alert_ids=ids,
        unknown_services=sorted(unknown),
    )
    # One audit entry per request: the alerts themselves are too many to list one by one.
    audit.record(
        session,
        action="alerts.ingested",
        resource_type="alert",
        after={
            "integration": integration,
            **summary.model_dump(include={"received", "created", "updated", "duplicates", "stale"}),
            "unknown_services": summary.unknown_services,
        },
    )
    return summary, is_new


def _created_change(row: NewAlert) -> Change:
    return alert_change(
        op="created",
        alert_id=row.id,
        organization_id=row.organization_id,
        incident_id=None,
        service_id=row.service_id,
        title=row.title,
        status=row.status,
        severity=row.severity,
    )


async def _latest(
    session: AsyncSession, organization_id: uuid.UUID, fingerprints: set[str]
) -> dict[str, Alert]:
    """The latest occurrence of each fingerprint, locked on PostgreSQL until commit."""
    if not fingerprints:
        return {}
    query = (
        select(Alert)
        .where(
            Alert.dedup_key.in_([dedup_key(organization_id, fp) for fp in fingerprints]),
            Alert.is_latest,
        )
        .order_by(Alert.dedup_key)  # one lock order for everyone: no deadlocks
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {alert.fingerprint: alert for alert in await session.scalars(query)}


async def _services(
    session: AsyncSession,
    organization_id: uuid.UUID,
    alerts: Sequence[IncomingAlert],
    service_labels: ServiceLabels,
) -> tuple[dict[str, uuid.UUID], set[str]]:
    """Catalog ids of the services the alerts name, and the names the catalog lacks."""
    names = {name for alert in alerts if (name := service_labels.service_of(alert.labels))}
    if not names:
        return {}, set()
    found = {
        name: service_id
        for service_id, name in await session.execute(
            select(Service.id, Service.name).where(
                Service.organization_id == organization_id, Service.name.in_(names)
            )
        )
    }
    unknown = names - found.keys()
    if unknown and service_labels.create_unknown:
        for name in sorted(unknown):
            service = Service(
                id=uuid.uuid4(),
                organization_id=organization_id,
                name=name,
                description="Created from alert labels (ALERT_CREATE_UNKNOWN_SERVICES).",
            )
            session.add(service)
            found[name] = service.id
        await session.flush()
        unknown = set()
    return found, unknown


def _known(alert: AlertRow | None) -> Known | None:
    if alert is None:
        return None
    return Known(status=alert.status, starts_at=alert.starts_at, ends_at=alert.ends_at)


def _message(alert: IncomingAlert) -> Message:
    return Message(
        status=alert.status,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        starts_at_given=alert.starts_at_given,
    )


@dataclass(slots=True)
class NewAlert:
    """An alert row to insert, with the attributes dedup reads and updates."""

    id: uuid.UUID
    organization_id: uuid.UUID
    fingerprint: str
    dedup_key: str
    integration: str
    status: str
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
    is_latest: bool
    service_name: str | None
    service_id: uuid.UUID | None
    correlated_status: str | None
    needs_correlation: bool
    created_at: datetime
    updated_at: datetime


AlertRow = Alert | NewAlert


def _new_row(
    organization_id: uuid.UUID,
    integration: str,
    incoming: IncomingAlert,
    services: dict[str, uuid.UUID],
    service_labels: ServiceLabels,
    now: datetime,
) -> NewAlert:
    service_name = service_labels.service_of(incoming.labels)
    return NewAlert(
        id=uuid.uuid4(),
        organization_id=organization_id,
        fingerprint=incoming.fingerprint,
        dedup_key=dedup_key(organization_id, incoming.fingerprint),
        integration=integration,
        status=incoming.status,
        title=incoming.title,
        severity=incoming.severity[:64] if incoming.severity else None,
        labels=incoming.labels,
        annotations=incoming.annotations,
        generator_url=incoming.generator_url,
        starts_at=incoming.starts_at,
        ends_at=incoming.ends_at,
        first_seen_at=now,
        last_seen_at=now,
        receive_count=1,
        is_latest=True,
        service_name=service_name,
        service_id=services.get(service_name) if service_name else None,
        correlated_status=None,
        needs_correlation=True,
        created_at=now,
        updated_at=now,
    )


def _apply(
    known: AlertRow, incoming: IncomingAlert, action: Action, tally: _Tally, now: datetime
) -> None:
    """Update the known occurrence for a RESOLVE, REFRESH or STALE message."""
    known.last_seen_at = now
    known.receive_count += 1
    if action is Action.STALE:
        tally.stale += 1
        return
    if action is Action.RESOLVE:
        known.status = "resolved"
        known.ends_at = incoming.ends_at or now
        known.needs_correlation = True
        _refresh_text(known, incoming)
        tally.updated += 1
        return
    if _refresh_text(known, incoming):
        tally.updated += 1
    else:
        tally.duplicates += 1


def _refresh_text(known: AlertRow, incoming: IncomingAlert) -> bool:
    """Take the message's annotations, title and link; whether any changed."""
    changed = False
    if known.annotations != incoming.annotations:
        known.annotations = incoming.annotations
        changed = True
    if known.title != incoming.title:
        known.title = incoming.title
        changed = True
    if incoming.generator_url and known.generator_url != incoming.generator_url:
        known.generator_url = incoming.generator_url
        changed = True
    return changed
