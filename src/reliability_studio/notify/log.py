"""The delivery log: reading notifications, and sending a failed one again."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import Page, PageRequest, fetch_page
from reliability_studio.api.problems import ConflictError, NotFoundError
from reliability_studio.db.base import utcnow
from reliability_studio.notify.models import Notification, NotificationChannel
from reliability_studio.notify.schemas import NotificationOut


async def list_notifications(
    session: AsyncSession,
    organization_id: uuid.UUID,
    page: PageRequest,
    *,
    statuses: list[str] | None = None,
    channel_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
) -> Page[NotificationOut]:
    """Deliveries, newest first."""
    names = {
        channel.id: channel.name
        for channel in await session.scalars(
            select(NotificationChannel).where(
                NotificationChannel.organization_id == organization_id
            )
        )
    }
    query = select(Notification).where(Notification.organization_id == organization_id)
    if statuses:
        query = query.where(Notification.status.in_(statuses))
    if channel_id is not None:
        query = query.where(Notification.channel_id == channel_id)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    return await fetch_page(
        session,
        query,
        page,
        sort=Notification.created_at,
        row_id=Notification.id,
        render=lambda row: notification_out(row, names.get(row.channel_id, "")),
        descending=True,
    )


async def retry_notification(
    session: AsyncSession, organization_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    """Send a notification again, from a fresh count of attempts; 409 once delivered."""
    row = await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.organization_id == organization_id
        )
    )
    if row is None:
        raise NotFoundError(f"notification {notification_id} does not exist")
    if row.status in ("delivered", "delivering"):
        raise ConflictError(f"notification {notification_id} is {row.status}; nothing to retry")
    now = utcnow()
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    row.updated_at = now
    await session.commit()
    return row


def notification_out(row: Notification, channel_name: str) -> NotificationOut:
    """The API shape of a delivery."""
    latency = (
        (row.delivered_at - row.created_at).total_seconds() * 1000 if row.delivered_at else None
    )
    return NotificationOut(
        id=row.id,
        channel_id=row.channel_id,
        channel_name=channel_name,
        event=row.event,
        incident_id=row.incident_id,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        latency_ms=round(latency, 1) if latency is not None else None,
    )
