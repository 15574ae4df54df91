"""Outbound safety: requests to user-supplied URLs reach only addresses the policy allows.

- `addresses`: which addresses are denied (loopback, private, link-local, metadata, ...) and
  the `OutboundPolicy` that can allow some; pure.
- `resolver`: resolving a host and checking every address it has; connecting to a checked
  address (SMTP).
- `http`: httpx clients whose every connection is checked at connect time.

Operator-configured URLs (PROMETHEUS_URL, LOKI_URL, OIDC_ISSUER, ...) are trusted and do not
go through here; user-supplied ones (notification channel targets) always do.
"""

from __future__ import annotations

import httpx

from reliability_studio.config import Settings
from reliability_studio.outbound.addresses import DestinationDeniedError, OutboundPolicy
from reliability_studio.outbound.resolver import check_destination

__all__ = ["DestinationDeniedError", "OutboundPolicy", "check_url", "policy_from_settings"]


def policy_from_settings(settings: Settings) -> OutboundPolicy:
    """The policy OUTBOUND_ALLOWED_NETWORKS and OUTBOUND_ALLOW_PRIVATE describe."""
    return OutboundPolicy.of(
        settings.outbound_allowed_networks, allow_private=settings.outbound_allow_private
    )


async def check_url(url: str, policy: OutboundPolicy) -> None:
    """The save-time check of a user-supplied http(s) URL; raises `DestinationDeniedError`.

    Denies a literal address (in any spelling) or a name that resolves, now, to an address
    the policy denies. A name that does not resolve passes: the send-time check still holds.
    """
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    await check_destination(parsed.host, port, policy)
