"""The save-time SSRF check of a channel's targets: its URLs, or its SMTP server.

A 422 naming the field when a target is a denied literal address or a name that resolves,
now, to a denied one. The dispatcher checks again at send time, on the address it connects
to; this check exists so that a user learns of the mistake when making it, not from a dead
notification later.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reliability_studio.api.problems import UnprocessableError
from reliability_studio.notify.schemas import EmailConfig
from reliability_studio.outbound import (
    DestinationDeniedError,
    OutboundPolicy,
    check_url,
    policy_from_settings,
)
from reliability_studio.outbound.resolver import check_destination

URL_FIELDS = ("webhook_url", "url", "api_base")


async def outbound_policy(request: Request) -> OutboundPolicy:
    """The application's outbound policy, built once from its settings."""
    state = request.app.state
    policy = getattr(state, "outbound_policy", None)
    if not isinstance(policy, OutboundPolicy):
        policy = policy_from_settings(state.settings)
        state.outbound_policy = policy
    return policy


Outbound = Annotated[OutboundPolicy, Depends(outbound_policy)]


async def check_channel_targets(config: object, policy: OutboundPolicy) -> None:
    """Raise a 422 naming `config.<kind>.<field>` when a target of `config` is denied."""
    try:
        if isinstance(config, EmailConfig):
            field = "host"
            await check_destination(config.host, config.port, policy)
            return
        for field in URL_FIELDS:
            url = getattr(config, field, None)
            if isinstance(url, str):
                await check_url(url, policy)
    except DestinationDeniedError as denied:
        # Named as validation names fields of the config union: `config.<kind>.<field>`.
        kind = getattr(config, "kind", "")
        raise UnprocessableError(str(denied), field=f"config.{kind}.{field}") from None
