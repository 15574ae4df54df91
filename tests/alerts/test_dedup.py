"""Specification of deduplication as pure logic: `dedup.classify` decides what one incoming
alert message does to the latest known occurrence of its fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reliability_studio.alerts.dedup import Action, Known, Message, classify

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus `minutes`."""
    return T0 + timedelta(minutes=minutes)


def firing_known(starts: float = 0) -> Known:
    """A latest occurrence that fires since `starts` minutes after T0."""
    return Known(status="firing", starts_at=at(starts), ends_at=None)


def resolved_known(starts: float = 0, ends: float = 10) -> Known:
    """A latest occurrence that fired from `starts` and resolved at `ends`."""
    return Known(status="resolved", starts_at=at(starts), ends_at=at(ends))


def firing(starts: float = 0, *, given: bool = True) -> Message:
    """A firing message starting `starts` minutes after T0 (`given`: sent, not filled in)."""
    return Message(status="firing", starts_at=at(starts), ends_at=None, starts_at_given=given)


def resolved(starts: float = 0, ends: float | None = 10) -> Message:
    """A resolved message of the occurrence that started at `starts` and ended at `ends`."""
    return Message(
        status="resolved",
        starts_at=at(starts),
        ends_at=None if ends is None else at(ends),
        starts_at_given=True,
    )


# --- nothing known yet --------------------------------------------------------------------


def test_a_first_firing_message_is_a_new_alert() -> None:
    assert classify(None, firing()) is Action.NEW


def test_a_first_resolved_message_is_a_new_alert_too() -> None:
    assert classify(None, resolved()) is Action.NEW


def test_a_first_message_without_a_given_start_is_a_new_alert() -> None:
    assert classify(None, firing(given=False)) is Action.NEW


# --- the latest occurrence fires ----------------------------------------------------------


def test_firing_again_while_firing_refreshes_the_known_alert() -> None:
    assert classify(firing_known(starts=0), firing(starts=0)) is Action.REFRESH


def test_firing_with_another_start_while_firing_still_refreshes_the_known_alert() -> None:
    assert classify(firing_known(starts=0), firing(starts=5)) is Action.REFRESH
    assert classify(firing_known(starts=5), firing(starts=0)) is Action.REFRESH


def test_firing_without_a_given_start_while_firing_refreshes_the_known_alert() -> None:
    assert classify(firing_known(starts=0), firing(starts=30, given=False)) is Action.REFRESH


def test_a_resolved_message_of_the_firing_occurrence_resolves_it() -> None:
    assert classify(firing_known(starts=0), resolved(starts=0, ends=10)) is Action.RESOLVE


def test_a_resolved_message_ending_exactly_when_the_occurrence_started_resolves_it() -> None:
    assert classify(firing_known(starts=5), resolved(starts=5, ends=5)) is Action.RESOLVE


def test_a_resolved_message_without_an_end_resolves_the_firing_occurrence() -> None:
    assert classify(firing_known(starts=0), resolved(starts=0, ends=None)) is Action.RESOLVE


def test_a_resolved_message_of_an_older_occurrence_is_stale_and_ends_nothing() -> None:
    # The previous occurrence ran from 0 to 10; the one firing now started at 20.
    assert classify(firing_known(starts=20), resolved(starts=0, ends=10)) is Action.STALE


# --- the latest occurrence has resolved ---------------------------------------------------


def test_a_repeated_resolved_message_refreshes_the_resolved_alert() -> None:
    assert classify(resolved_known(0, 10), resolved(starts=0, ends=10)) is Action.REFRESH


def test_a_firing_message_with_the_same_start_after_its_resolved_is_stale() -> None:
    assert classify(resolved_known(0, 10), firing(starts=0)) is Action.STALE


def test_a_firing_message_of_an_older_occurrence_after_a_resolved_is_stale() -> None:
    assert classify(resolved_known(30, 40), firing(starts=0)) is Action.STALE


def test_a_firing_message_starting_before_the_known_end_is_stale() -> None:
    assert classify(resolved_known(0, 10), firing(starts=5)) is Action.STALE


@pytest.mark.parametrize("starts", [10, 11, 600])
def test_firing_again_from_the_known_end_or_later_is_a_new_occurrence(starts: int) -> None:
    assert classify(resolved_known(0, 10), firing(starts=starts)) is Action.NEW


def test_firing_again_after_a_resolved_without_an_end_starts_a_new_occurrence_if_later() -> None:
    known = Known(status="resolved", starts_at=at(0), ends_at=None)
    assert classify(known, firing(starts=1)) is Action.NEW
    assert classify(known, firing(starts=0)) is Action.STALE


def test_firing_again_without_a_given_start_after_a_resolved_is_a_new_occurrence() -> None:
    # The start was filled in with "now", so it says nothing about which occurrence it is,
    # even when "now" falls before what is known (a skewed clock).
    assert classify(resolved_known(0, 10), firing(starts=20, given=False)) is Action.NEW
    assert classify(resolved_known(0, 10), firing(starts=0, given=False)) is Action.NEW
