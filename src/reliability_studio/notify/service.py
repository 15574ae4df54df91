"""Notification channel and policy operations."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.patch import patch_changes
from reliability_studio.api.problems import (
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from reliability_studio.api.queries import commit_unique
from reliability_studio.notify.models import NotificationChannel, NotificationPolicy
from reliability_studio.notify.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    PolicyCreate,
    PolicyOut,
    PolicyUpdate,
    masked,
)


def new_channel(organization_id: uuid.UUID, data: ChannelCreate) -> NotificationChannel:
    """The row of a channel described by `data` (not yet added to a session)."""
    config = data.config.model_dump()
    return NotificationChannel(
        id=uuid.uuid4(),
        organization_id=organization_id,
        name=data.name,
        kind=config["kind"],
        enabled=data.enabled,
        config=config,
    )


async def create_channel(
    session: AsyncSession, organization_id: uuid.UUID, data: ChannelCreate
) -> NotificationChannel:
    """Add a channel; 409 if the name is taken."""
    channel = new_channel(organization_id, data)
    session.add(channel)
    await commit_unique(
        session, f"a notification channel named {data.name!r} already exists", field="name"
    )
    return channel


async def get_channel(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> NotificationChannel:
    """One channel, or 404."""
    channel = await session.scalar(
        select(NotificationChannel).where(
            NotificationChannel.id == channel_id,
            NotificationChannel.organization_id == organization_id,
        )
    )
    if channel is None:
        raise NotFoundError(f"notification channel {channel_id} does not exist")
    return channel


async def list_channels(
    session: AsyncSession, organization_id: uuid.UUID
) -> list[NotificationChannel]:
    """Every channel, by name."""
    return list(
        await session.scalars(
            select(NotificationChannel)
            .where(NotificationChannel.organization_id == organization_id)
            .order_by(NotificationChannel.name)
        )
    )


async def update_channel(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID, data: ChannelUpdate
) -> NotificationChannel:
    """Change a channel; a new config replaces the old one whole."""
    changes = patch_changes(data, "name", "enabled", "config")
    channel = await get_channel(session, organization_id, channel_id)
    if data.config is not None:
        channel.config = data.config.model_dump()
        channel.kind = channel.config["kind"]
    changes.pop("config", None)
    for field, value in changes.items():
        setattr(channel, field, value)
    await commit_unique(
        session, f"a notification channel named {channel.name!r} already exists", field="name"
    )
    return channel


async def delete_channel(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> None:
    """Remove a channel that no policy names (409 otherwise)."""
    channel = await get_channel(session, organization_id, channel_id)
    users = [
        policy.name
        for policy in await list_policies(session, organization_id)
        if str(channel_id) in policy.channel_ids
    ]
    if users:
        raise ConflictError(
            f"channel {channel.name!r} is used by policies {', '.join(sorted(users))}; "
            "remove it from them first"
        )
    await session.delete(channel)
    await session.commit()


def channel_out(channel: NotificationChannel) -> ChannelOut:
    """The API shape of a channel, secrets masked."""
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        enabled=channel.enabled,
        config=masked(channel.config),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
        version=channel.version,
    )


async def create_policy(
    session: AsyncSession, organization_id: uuid.UUID, data: PolicyCreate
) -> NotificationPolicy:
    """Add a policy; its channels must exist (422 naming the first that does not)."""
    await _check_channels(session, organization_id, data.channel_ids)
    policy = NotificationPolicy(
        id=uuid.uuid4(),
        organization_id=organization_id,
        **_stored_policy(data.model_dump()),
    )
    session.add(policy)
    await commit_unique(
        session, f"a notification policy named {data.name!r} already exists", field="name"
    )
    return policy


async def get_policy(
    session: AsyncSession, organization_id: uuid.UUID, policy_id: uuid.UUID
) -> NotificationPolicy:
    """One policy, or 404."""
    policy = await session.scalar(
        select(NotificationPolicy).where(
            NotificationPolicy.id == policy_id,
            NotificationPolicy.organization_id == organization_id,
        )
    )
    if policy is None:
        raise NotFoundError(f"notification policy {policy_id} does not exist")
    return policy


async def list_policies(
    session: AsyncSession, organization_id: uuid.UUID
) -> list[NotificationPolicy]:
    """Every policy, by name."""
    return list(
        await session.scalars(
            select(NotificationPolicy)
            .where(NotificationPolicy.organization_id == organization_id)
            .order_by(NotificationPolicy.name)
        )
    )


async def update_policy(
    session: AsyncSession, organization_id: uuid.UUID, policy_id: uuid.UUID, data: PolicyUpdate
) -> NotificationPolicy:
    """Change a policy."""
    changes = patch_changes(data, "name", "enabled", "events", "services", "teams", "channel_ids")
    policy = await get_policy(session, organization_id, policy_id)
    if data.channel_ids is not None:
        await _check_channels(session, organization_id, data.channel_ids)
    for field, value in _stored_policy(changes).items():
        setattr(policy, field, value)
    await commit_unique(
        session, f"a notification policy named {policy.name!r} already exists", field="name"
    )
    return policy


async def delete_policy(
    session: AsyncSession, organization_id: uuid.UUID, policy_id: uuid.UUID
) -> None:
    """Remove a policy."""
    await session.delete(await get_policy(session, organization_id, policy_id))
    await session.commit()


def policy_out(policy: NotificationPolicy) -> PolicyOut:
    """The API shape of a policy."""
    return PolicyOut.model_validate(policy, from_attributes=True)


def _stored_policy(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: channel ids as text."""
    if "channel_ids" in fields:
        fields["channel_ids"] = [str(channel_id) for channel_id in fields["channel_ids"]]
    return fields


async def _check_channels(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: list[uuid.UUID]
) -> None:
    found = set(
        await session.scalars(
            select(NotificationChannel.id).where(
                NotificationChannel.organization_id == organization_id,
                NotificationChannel.id.in_(channel_ids),
            )
        )
    )
    for position, channel_id in enumerate(channel_ids):
        if channel_id not in found:
            raise UnprocessableError(
                f"notification channel {channel_id} does not exist",
                field=f"channel_ids.{position}",
            )
