"""Specification of notification routing: which channels get which events."""

from __future__ import annotations

import uuid

from reliability_studio.notify.delivery import EventType
from reliability_studio.notify.policies import (
    EventFacts,
    PolicySpec,
    channels_for,
    matches,
    severity_at_least,
)

SLACK, PAGER, MAIL = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _policy(
    *channels: uuid.UUID, events: tuple[EventType, ...] = ("incident.created",), **fields: object
) -> PolicySpec:
    return PolicySpec(
        id=uuid.uuid4(),
        enabled=bool(fields.pop("enabled", True)),
        events=frozenset(events),
        channel_ids=channels,
        **fields,  # type: ignore[arg-type]
    )


def _facts(
    event: EventType = "incident.created",
    severity: str | None = "high",
    services: tuple[str, ...] = ("checkout",),
    teams: tuple[str, ...] = ("payments-team",),
) -> EventFacts:
    return EventFacts(event, severity, frozenset(services), frozenset(teams))


def test_a_policy_sends_its_events_to_its_channels() -> None:
    assert channels_for([_policy(SLACK)], _facts()) == [SLACK]


def test_other_events_are_not_sent() -> None:
    assert channels_for([_policy(SLACK)], _facts(event="task.assigned")) == []


def test_a_minimum_severity_lets_through_that_severity_and_worse() -> None:
    assert severity_at_least("critical", "high")
    assert severity_at_least("high", "high")
    assert not severity_at_least("medium", "high")
    assert not severity_at_least(None, "high")
    assert severity_at_least(None, None)


def test_a_policy_for_some_services_ignores_the_others() -> None:
    policy = _policy(PAGER, services=frozenset({"payments"}))
    assert not matches(policy, _facts(services=("checkout",)))
    assert matches(policy, _facts(services=("checkout", "payments")))


def test_a_policy_for_a_team_ignores_other_teams() -> None:
    policy = _policy(MAIL, teams=frozenset({"search-team"}))
    assert channels_for([policy], _facts()) == []
    assert channels_for([policy], _facts(teams=("search-team",))) == [MAIL]


def test_a_disabled_policy_sends_nothing() -> None:
    assert channels_for([_policy(SLACK, enabled=False)], _facts()) == []


def test_a_channel_reached_by_two_policies_gets_the_event_once() -> None:
    policies = [_policy(SLACK, PAGER), _policy(PAGER, MAIL, min_severity="high")]
    assert channels_for(policies, _facts()) == [SLACK, PAGER, MAIL]


def test_every_matching_policy_adds_its_channels() -> None:
    policies = [_policy(SLACK), _policy(PAGER, min_severity="critical")]
    assert channels_for(policies, _facts(severity="critical")) == [SLACK, PAGER]
    assert channels_for(policies, _facts(severity="low")) == [SLACK]
