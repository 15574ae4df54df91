"""HTTP layer of `/api/notification-channels` and `/api/notification-policies`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from reliability_studio.api.concurrency import IfMatch, etag_responses, lock_for_write, with_etag
from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.pagination import Page, PageParams
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.notify import log as deliveries
from reliability_studio.notify import service as notify
from reliability_studio.notify.models import NotificationChannel, NotificationPolicy
from reliability_studio.notify.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    NotificationOut,
    PolicyCreate,
    PolicyOut,
    PolicyUpdate,
)
from reliability_studio.notify.targets import Outbound, check_channel_targets

router = APIRouter(tags=["notifications"], responses=PROBLEM_RESPONSES)
CHANNELS = "/api/notification-channels"
POLICIES = "/api/notification-policies"
NOTIFICATIONS = "/api/notifications"
Status = Literal["pending", "delivering", "delivered", "dead"]


@router.post(
    CHANNELS,
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    responses=etag_responses(201),
)
async def create_channel(
    body: ChannelCreate,
    session: Session,
    organization_id: OrganizationId,
    response: Response,
    outbound: Outbound,
) -> ChannelOut:
    """Add a channel. Its secrets are write-only: never shown back, never logged.

    A target that is, or resolves to, a loopback, private, link-local or metadata address
    is refused (422) unless OUTBOUND_ALLOWED_NETWORKS or OUTBOUND_ALLOW_PRIVATE allows it."""
    await check_channel_targets(body.config, outbound)
    channel = await notify.create_channel(session, organization_id, body)
    response.headers["Location"] = f"{CHANNELS}/{channel.id}"
    return with_etag(response, notify.channel_out(channel))


@router.get(CHANNELS, response_model=Page[ChannelOut])
async def list_channels(session: Session, organization_id: OrganizationId) -> Page[ChannelOut]:
    """Every channel, by name (one page: channels are few)."""
    channels = await notify.list_channels(session, organization_id)
    return Page(items=[notify.channel_out(channel) for channel in channels], next_cursor=None)


@router.get(CHANNELS + "/{channel_id}", response_model=ChannelOut, responses=etag_responses(200))
async def get_channel(
    channel_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> ChannelOut:
    """One channel, secrets masked."""
    channel = await notify.get_channel(session, organization_id, channel_id)
    return with_etag(response, notify.channel_out(channel))


@router.patch(
    CHANNELS + "/{channel_id}",
    response_model=ChannelOut,
    responses=etag_responses(200, conditional=True),
)
async def update_channel(
    channel_id: uuid.UUID,
    body: ChannelUpdate,
    session: Session,
    organization_id: OrganizationId,
    outbound: Outbound,
    if_match: IfMatch,
    response: Response,
) -> ChannelOut:
    """Rename, enable or disable a channel, or replace its configuration (whose targets are
    checked as on create). 412 for a stale `If-Match`."""
    if body.config is not None:  # before the lock: resolving a name may take its time
        await check_channel_targets(body.config, outbound)
    await _lock_channel(session, if_match, organization_id, channel_id)
    channel = await notify.update_channel(session, organization_id, channel_id, body)
    return with_etag(response, notify.channel_out(channel))


@router.delete(
    CHANNELS + "/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_channel(
    channel_id: uuid.UUID, session: Session, organization_id: OrganizationId, if_match: IfMatch
) -> None:
    """Remove a channel that no policy uses (409 otherwise; 412: stale `If-Match`)."""
    await _lock_channel(session, if_match, organization_id, channel_id)
    await notify.delete_channel(session, organization_id, channel_id)


@router.post(
    POLICIES,
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyOut,
    responses=etag_responses(201),
)
async def create_policy(
    body: PolicyCreate, session: Session, organization_id: OrganizationId, response: Response
) -> PolicyOut:
    """Add a policy: which events, at what severity, about which services or teams, go to
    which channels."""
    policy = await notify.create_policy(session, organization_id, body)
    response.headers["Location"] = f"{POLICIES}/{policy.id}"
    return with_etag(response, notify.policy_out(policy))


@router.get(POLICIES, response_model=Page[PolicyOut])
async def list_policies(session: Session, organization_id: OrganizationId) -> Page[PolicyOut]:
    """Every policy, by name (one page: policies are few)."""
    policies = await notify.list_policies(session, organization_id)
    return Page(items=[notify.policy_out(policy) for policy in policies], next_cursor=None)


@router.get(POLICIES + "/{policy_id}", response_model=PolicyOut, responses=etag_responses(200))
async def get_policy(
    policy_id: uuid.UUID, session: Session, organization_id: OrganizationId, response: Response
) -> PolicyOut:
    """One policy."""
    policy = await notify.get_policy(session, organization_id, policy_id)
    return with_etag(response, notify.policy_out(policy))


@router.patch(
    POLICIES + "/{policy_id}",
    response_model=PolicyOut,
    responses=etag_responses(200, conditional=True),
)
async def update_policy(
    policy_id: uuid.UUID,
    body: PolicyUpdate,
    session: Session,
    organization_id: OrganizationId,
    if_match: IfMatch,
    response: Response,
) -> PolicyOut:
    """Change a policy (412: stale `If-Match`)."""
    await _lock_policy(session, if_match, organization_id, policy_id)
    policy = await notify.update_policy(session, organization_id, policy_id, body)
    return with_etag(response, notify.policy_out(policy))


@router.delete(
    POLICIES + "/{policy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=etag_responses(None, conditional=True),
)
async def delete_policy(
    policy_id: uuid.UUID, session: Session, organization_id: OrganizationId, if_match: IfMatch
) -> None:
    """Remove a policy (412: stale `If-Match`)."""
    await _lock_policy(session, if_match, organization_id, policy_id)
    await notify.delete_policy(session, organization_id, policy_id)


async def _lock_channel(
    session: Session, if_match: IfMatch, organization_id: OrganizationId, channel_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        NotificationChannel,
        NotificationChannel.id == channel_id,
        NotificationChannel.organization_id == organization_id,
        what=f"notification channel {channel_id}",
    )


async def _lock_policy(
    session: Session, if_match: IfMatch, organization_id: OrganizationId, policy_id: uuid.UUID
) -> None:
    await lock_for_write(
        session,
        if_match,
        NotificationPolicy,
        NotificationPolicy.id == policy_id,
        NotificationPolicy.organization_id == organization_id,
        what=f"notification policy {policy_id}",
    )


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
