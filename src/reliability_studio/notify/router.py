"""HTTP layer of `/api/notification-channels` and `/api/notification-policies`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.notify import log as deliveries
from reliability_studio.notify import service as notify
from reliability_studio.notify.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    NotificationOut,
    PolicyCreate,
    PolicyOut,
    PolicyUpdate,
)

router = APIRouter(tags=["notifications"], responses=PROBLEM_RESPONSES)
CHANNELS = "/api/notification-channels"
POLICIES = "/api/notification-policies"
NOTIFICATIONS = "/api/notifications"
Status = Literal["pending", "delivering", "delivered", "dead"]


@router.post(CHANNELS, status_code=status.HTTP_201_CREATED, response_model=ChannelOut)
async def create_channel(
    body: ChannelCreate, session: Session, organization_id: OrganizationId, response: Response
) -> ChannelOut:
    """Add a channel. Its secrets are write-only: never shown back, never logged."""
    channel = await notify.create_channel(session, organization_id, body)
    response.headers["Location"] = f"{CHANNELS}/{channel.id}"
    return notify.channel_out(channel)


@router.get(CHANNELS, response_model=Page[ChannelOut])
async def list_channels(session: Session, organization_id: OrganizationId) -> Page[ChannelOut]:
    """Every channel, by name (one page: channels are few)."""
    channels = await notify.list_channels(session, organization_id)
    return Page(items=[notify.channel_out(channel) for channel in channels], next_cursor=None)


@router.get(CHANNELS + "/{channel_id}", response_model=ChannelOut)
async def get_channel(
    channel_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> ChannelOut:
    """One channel, secrets masked."""
    return notify.channel_out(await notify.get_channel(session, organization_id, channel_id))


@router.patch(CHANNELS + "/{channel_id}", response_model=ChannelOut)
async def update_channel(
    channel_id: uuid.UUID, body: ChannelUpdate, session: Session, organization_id: OrganizationId
) -> ChannelOut:
    """Rename, enable or disable a channel, or replace its configuration."""
    channel = await notify.update_channel(session, organization_id, channel_id, body)
    return notify.channel_out(channel)


@router.delete(CHANNELS + "/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_channel(
    channel_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> None:
    """Remove a channel that no policy uses (409 otherwise)."""
    await notify.delete_channel(session, organization_id, channel_id)


@router.post(POLICIES, status_code=status.HTTP_201_CREATED, response_model=PolicyOut)
async def create_policy(
    body: PolicyCreate, session: Session, organization_id: OrganizationId, response: Response
) -> PolicyOut:
    """Add a policy: which events, at what severity, about which services or teams, go to
    which channels."""
    policy = await notify.create_policy(session, organization_id, body)
    response.headers["Location"] = f"{POLICIES}/{policy.id}"
    return notify.policy_out(policy)


@router.get(POLICIES, response_model=Page[PolicyOut])
async def list_policies(session: Session, organization_id: OrganizationId) -> Page[PolicyOut]:
    """Every policy, by name (one page: policies are few)."""
    policies = await notify.list_policies(session, organization_id)
    return Page(items=[notify.policy_out(policy) for policy in policies], next_cursor=None)


@router.get(POLICIES + "/{policy_id}", response_model=PolicyOut)
async def get_policy(
    policy_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> PolicyOut:
    """One policy."""
    return notify.policy_out(await notify.get_policy(session, organization_id, policy_id))


@router.patch(POLICIES + "/{policy_id}", response_model=PolicyOut)
async def update_policy(
    policy_id: uuid.UUID, body: PolicyUpdate, session: Session, organization_id: OrganizationId
) -> PolicyOut:
    """Change a policy."""
    return notify.policy_out(await notify.update_policy(session, organization_id, policy_id, body))


@router.delete(POLICIES + "/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(
    policy_id: uuid.UUID, session: Session, organization_id: OrganizationId
) -> None:
    """Remove a policy."""
    await notify.delete_policy(session, organization_id, policy_id)


@router.get(NOTIFICATIONS, response_model=Page[NotificationOut])
async def list_notifications(
    session: Session,
    organization_id: OrganizationId,
    page: PageParams,
    status: Annotated[list[Status] | None, Query()] = None,
    channel_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
) -> Page[NotificationOut]:
    """The delivery log, newest first: status, attempts, last error, latency."""
    return await deliveries.list_notifications(
        session,
        organization_id,
        page,
        statuses=list(status) if status else None,
        channel_id=channel_id,
        incident_id=incident_id,
    )


@router.post(
    NOTIFICATIONS + "/{notification_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotificationOut,
)
async def retry_notification(
    notification_id: uuid.UUID,
    request: Request,
    session: Session,
    organization_id: OrganizationId,
) -> NotificationOut:
    """Send a failed (dead) or waiting notification again, with a fresh count of attempts."""
    row = await deliveries.retry_notification(session, organization_id, notification_id)
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()
    channel = await notify.get_channel(session, organization_id, row.channel_id)
    return deliveries.notification_out(row, channel.name)
