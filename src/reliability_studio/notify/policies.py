"""Routing as pure logic: which channels a notification policy sends an event to.

A policy names events, and optionally a minimum severity and the services or teams it is
about; every enabled policy that matches adds its channels. A channel reached by two
policies gets the event once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from reliability_studio.incidents.lifecycle import SEVERITIES
from reliability_studio.notify.delivery import EventType

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}  # critical is 0


@dataclass(frozen=True)
class PolicySpec:
    """A notification policy, ready to apply. Empty `services`/`teams` match everything."""

    id: uuid.UUID
    enabled: bool
    events: frozenset[EventType]
    channel_ids: tuple[uuid.UUID, ...]
    min_severity: str | None = None
    services: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EventFacts:
    """What routing needs to know about an event."""

    event: EventType
    severity: str | None
    services: frozenset[str]
    teams: frozenset[str]


def severity_at_least(severity: str | None, minimum: str | None) -> bool:
    """Whether `severity` is `minimum` or more severe; no minimum lets everything through,
    and an event without a severity passes only when there is no minimum."""
    if minimum is None:
        return True
    if severity not in _RANK or minimum not in _RANK:
        return False
    return _RANK[severity] <= _RANK[minimum]


def matches(policy: PolicySpec, facts: EventFacts) -> bool:
    """Whether the policy wants this event."""
    return (
        policy.enabled
        and facts.event in policy.events
        and severity_at_least(facts.severity, policy.min_severity)
        and (not policy.services or bool(policy.services & facts.services))
        and (not policy.teams or bool(policy.teams & facts.teams))
    )


def channels_for(policies: Sequence[PolicySpec], facts: EventFacts) -> list[uuid.UUID]:
    """The channels to notify, each once, in the order the policies name them."""
    wanted = (
        channel for policy in policies if matches(policy, facts) for channel in policy.channel_ids
    )
    return list(dict.fromkeys(wanted))
