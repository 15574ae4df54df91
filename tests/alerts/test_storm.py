"""Storm control as pure logic (storm.py): which alerts get their own timeline event, when
the counted rest is summarised, and how a summary reads. One behaviour per test; no I/O."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from reliability_studio.alerts.storm import TOP_NAMES, split_detail, summary_due, summary_title

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


# split_detail


def test_split_detail_details_items_up_to_the_limit_and_counts_the_rest() -> None:
    detailed, counted = split_detail(list(range(15)), detail_used=0, limit=10)
    assert detailed == list(range(10))
    assert counted == list(range(10, 15))


def test_split_detail_details_only_the_room_left_by_earlier_events() -> None:
    detailed, counted = split_detail(["a", "b", "c", "d"], detail_used=8, limit=10)
    assert detailed == ["a", "b"]
    assert counted == ["c", "d"]


def test_split_detail_details_everything_while_there_is_room() -> None:
    detailed, counted = split_detail(["a", "b"], detail_used=3, limit=10)
    assert detailed == ["a", "b"]
    assert counted == []


def test_split_detail_counts_everything_once_the_limit_is_used() -> None:
    detailed, counted = split_detail(["a", "b"], detail_used=10, limit=10)
    assert detailed == []
    assert counted == ["a", "b"]


def test_split_detail_counts_everything_when_more_than_the_limit_was_used() -> None:
    detailed, counted = split_detail(["a", "b", "c"], detail_used=12, limit=10)
    assert detailed == []
    assert counted == ["a", "b", "c"]


def test_split_detail_with_a_zero_limit_counts_everything() -> None:
    detailed, counted = split_detail(["a"], detail_used=0, limit=0)
    assert detailed == []
    assert counted == ["a"]


def test_split_detail_of_nothing_is_nothing() -> None:
    assert split_detail([], detail_used=0, limit=10) == ([], [])


# summary_due


def test_a_summary_is_not_due_with_nothing_counted() -> None:
    assert not summary_due(pending=0, last_summary_at=None, now=T0, interval=MINUTE)


def test_the_first_summary_is_due_at_once() -> None:
    assert summary_due(pending=1, last_summary_at=None, now=T0, interval=MINUTE)


def test_a_summary_is_not_due_within_the_interval_of_the_last() -> None:
    assert not summary_due(
        pending=500, last_summary_at=T0, now=T0 + timedelta(seconds=59), interval=MINUTE
    )


def test_a_summary_is_due_once_the_interval_has_passed() -> None:
    assert summary_due(pending=1, last_summary_at=T0, now=T0 + MINUTE, interval=MINUTE)
    assert summary_due(pending=1, last_summary_at=T0, now=T0 + 2 * MINUTE, interval=MINUTE)


def test_with_a_zero_interval_a_summary_is_always_due_when_something_is_counted() -> None:
    assert summary_due(pending=1, last_summary_at=T0, now=T0, interval=timedelta(0))
    assert not summary_due(pending=0, last_summary_at=T0, now=T0, interval=timedelta(0))


# summary_title


def test_summary_title_counts_firing_alerts_with_thousands_separators() -> None:
    title = summary_title(9990, 0, Counter({"HighErrorRate": 9990}))
    assert title == "Alert storm: 9,990 more alerts firing (top: HighErrorRate x9,990)"


def test_summary_title_speaks_of_one_alert_in_the_singular() -> None:
    assert summary_title(1, 0, Counter()) == "Alert storm: 1 more alert firing"


def test_summary_title_counts_resolved_alerts_too() -> None:
    title = summary_title(3, 1200, Counter({"HighErrorRate": 1203}))
    assert (
        title == "Alert storm: 3 more alerts firing and 1,200 resolved (top: HighErrorRate x1,203)"
    )


def test_summary_title_of_resolved_alerts_only() -> None:
    assert summary_title(0, 2, Counter()) == "Alert storm: 2 resolved"


def test_summary_title_names_the_most_common_alerts_first_and_at_most_a_few() -> None:
    names = Counter({f"Alert{index}": index for index in range(1, TOP_NAMES + 3)})
    title = summary_title(sum(names.values()), 0, names)
    top = title.split("(top: ", 1)[1].rstrip(")").split(", ")
    assert len(top) == TOP_NAMES
    assert top[0] == f"Alert{TOP_NAMES + 2} x{TOP_NAMES + 2}"
    assert "Alert1 x1" not in top
