"""Specification of the incident lifecycle rules (pure logic, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.incidents.lifecycle import (
    ALLOWED_TRANSITIONS,
    STATUSES,
    LifecycleTimes,
    Status,
    seconds_between,
    times_after_transition,
    transition_refusal,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
NO_TIMES = LifecycleTimes(acknowledged_at=None, resolved_at=None, closed_at=None)
WORKING: tuple[Status, ...] = ("investigating", "identified", "monitoring")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("target", [s for s in STATUSES if s != "open"])
def test_open_may_move_to_every_other_status(target: Status) -> None:
    assert transition_refusal("open", target) is None


@pytest.mark.parametrize("current", STATUSES)
def test_staying_in_the_same_status_is_never_refused(current: Status) -> None:
    assert transition_refusal(current, current) is None


@pytest.mark.parametrize("current", WORKING)
@pytest.mark.parametrize("target", WORKING)
def test_working_statuses_may_follow_one_another(current: Status, target: Status) -> None:
    assert transition_refusal(current, target) is None


@pytest.mark.parametrize("target", [*WORKING, "closed"])
def test_a_resolved_incident_may_be_reopened_or_closed(target: Status) -> None:
    assert transition_refusal("resolved", target) is None


@pytest.mark.parametrize("current", [s for s in STATUSES if s not in ("open", "closed")])
def test_nothing_returns_to_open(current: Status) -> None:
    refusal = transition_refusal(current, "open")
    assert refusal is not None
    assert "open" in refusal
    assert current in refusal


@pytest.mark.parametrize("target", [s for s in STATUSES if s != "closed"])
def test_closed_is_final(target: Status) -> None:
    refusal = transition_refusal("closed", target)
    assert refusal is not None
    assert "final" in refusal


def test_the_allowed_transitions_name_every_status_and_nothing_else() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(STATUSES)
    for current, targets in ALLOWED_TRANSITIONS.items():
        assert targets <= set(STATUSES)
        assert current not in targets


def test_leaving_open_acknowledges_the_incident() -> None:
    times = times_after_transition(NO_TIMES, "investigating", at(30))
    assert times == LifecycleTimes(acknowledged_at=at(30), resolved_at=None, closed_at=None)


def test_acknowledgement_is_kept_by_later_transitions() -> None:
    times = times_after_transition(NO_TIMES, "investigating", at(30))
    times = times_after_transition(times, "monitoring", at(60))
    times = times_after_transition(times, "resolved", at(90))
    assert times.acknowledged_at == at(30)


def test_resolving_records_the_resolution_time() -> None:
    times = times_after_transition(NO_TIMES, "investigating", at(30))
    times = times_after_transition(times, "resolved", at(90))
    assert times.resolved_at == at(90)
    assert times.closed_at is None


def test_resolving_directly_from_open_also_acknowledges() -> None:
    times = times_after_transition(NO_TIMES, "resolved", at(45))
    assert times == LifecycleTimes(acknowledged_at=at(45), resolved_at=at(45), closed_at=None)


def test_reopening_clears_the_resolution_time() -> None:
    times = times_after_transition(NO_TIMES, "resolved", at(45))
    times = times_after_transition(times, "investigating", at(100))
    assert times == LifecycleTimes(acknowledged_at=at(45), resolved_at=None, closed_at=None)


def test_closing_a_resolved_incident_keeps_its_resolution_time() -> None:
    times = times_after_transition(NO_TIMES, "resolved", at(45))
    times = times_after_transition(times, "closed", at(500))
    assert times == LifecycleTimes(acknowledged_at=at(45), resolved_at=at(45), closed_at=at(500))


def test_closing_directly_counts_as_the_resolution() -> None:
    times = times_after_transition(NO_TIMES, "closed", at(60))
    assert times == LifecycleTimes(acknowledged_at=at(60), resolved_at=at(60), closed_at=at(60))


def test_seconds_between_is_none_while_the_end_is_unknown() -> None:
    assert seconds_between(T0, None) is None


def test_seconds_between_is_rounded_to_the_millisecond() -> None:
    assert seconds_between(T0, T0 + timedelta(seconds=90, microseconds=123_456)) == 90.123


# Property: any sequence of requested transitions, applied as the API applies them
# (refused ones change nothing), keeps the lifecycle timestamps consistent.

transition_requests = st.lists(
    st.tuples(st.sampled_from(STATUSES), st.integers(min_value=0, max_value=86_400)),
    max_size=30,
)


@given(transition_requests)
def test_any_sequence_of_transitions_keeps_the_timestamps_consistent(
    requests: list[tuple[Status, int]],
) -> None:
    status: Status = "open"
    times = NO_TIMES
    now = T0
    first_acknowledged: datetime | None = None
    for target, gap_seconds in requests:
        now += timedelta(seconds=gap_seconds)
        before_status, before_times = status, times
        refusal = transition_refusal(status, target)
        if refusal is not None:
            assert target == "open" or before_status == "closed"
            continue
        if target == status:
            continue
        times = times_after_transition(times, target, now)
        status = target

        # Nothing returns to open, and closed is terminal.
        assert status != "open"
        assert before_status != "closed"
        # acknowledged_at is set on leaving open, and never changes afterwards.
        assert times.acknowledged_at is not None
        if first_acknowledged is None:
            first_acknowledged = times.acknowledged_at
            assert first_acknowledged == now
        assert times.acknowledged_at == first_acknowledged
        # resolved_at is set exactly while resolved or closed; closed_at exactly while closed.
        assert (times.resolved_at is not None) == (status in ("resolved", "closed"))
        assert (times.closed_at is not None) == (status == "closed")
        # A resolution survives closing; a new one is stamped only when there was none.
        if status in ("resolved", "closed") and before_times.resolved_at is not None:
            assert times.resolved_at == before_times.resolved_at
        # Times never run backwards.
        assert times.acknowledged_at <= now
        if times.resolved_at is not None:
            assert times.acknowledged_at <= times.resolved_at <= now
        if times.closed_at is not None:
            assert times.resolved_at is not None
            assert times.resolved_at <= times.closed_at == now
