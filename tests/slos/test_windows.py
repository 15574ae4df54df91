"""SLO windows (windows.slo_window): rolling, and calendar months and quarters that begin at
local midnight in the SLO's time zone, across DST changes. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability_studio.slos.windows import MIN_WINDOW, slo_window

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    """A UTC moment from `YYYY-MM-DDTHH:MM`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("days", [1, 7, 28, 30, 90, 365])
def test_a_rolling_window_is_the_last_n_days(days: int) -> None:
    now = utc("2024-03-15T12:34")
    window = slo_window(now, days, None, "Europe/Paris")
    assert window.elapsed == window.period == timedelta(days=days)
    assert window.start == now - timedelta(days=days)


@pytest.mark.parametrize(
    ("now", "start", "period"),
    [
        ("2024-03-15T12:00", "2024-03-01T00:00", 31 * DAY),
        ("2024-02-29T23:59", "2024-02-01T00:00", 29 * DAY),  # leap year
        ("2023-02-10T00:00", "2023-02-01T00:00", 28 * DAY),
        ("2024-12-31T23:00", "2024-12-01T00:00", 31 * DAY),  # ends in the next year
        ("2024-04-30T10:00", "2024-04-01T00:00", 30 * DAY),
    ],
)
def test_a_month_in_utc(now: str, start: str, period: timedelta) -> None:
    window = slo_window(utc(now), 30, "month", "UTC")
    assert window.start == utc(start)
    assert window.period == period
    assert window.elapsed == utc(now) - utc(start)


@pytest.mark.parametrize(
    ("now", "start", "period"),
    [
        ("2024-01-01T00:00", "2024-01-01T00:00", 91 * DAY),  # Q1 of a leap year
        ("2024-05-20T08:00", "2024-04-01T00:00", 91 * DAY),
        ("2024-09-30T23:59", "2024-07-01T00:00", 92 * DAY),
        ("2024-11-10T00:00", "2024-10-01T00:00", 92 * DAY),  # ends in the next year
        ("2023-03-31T12:00", "2023-01-01T00:00", 90 * DAY),
    ],
)
def test_a_quarter_in_utc(now: str, start: str, period: timedelta) -> None:
    window = slo_window(utc(now), 30, "quarter", "UTC")
    assert window.start == utc(start)
    assert window.period == period


def test_a_month_begins_at_local_midnight() -> None:
    """23:30 UTC on 29 Feb is already 1 March in Paris: March began half an hour ago."""
    window = slo_window(utc("2024-02-29T23:30"), 30, "month", "Europe/Paris")
    assert window.start == utc("2024-02-29T23:00")
    assert window.elapsed == timedelta(minutes=30)
    # March in Paris loses an hour to summer time (31 March).
    assert window.period == 31 * DAY - HOUR


def test_a_month_west_of_utc_is_still_the_previous_month() -> None:
    """03:00 UTC on 1 March is 22:00 on 29 February in New York."""
    window = slo_window(utc("2024-03-01T03:00"), 30, "month", "America/New_York")
    assert window.start == utc("2024-02-01T05:00")
    assert window.period == 29 * DAY
    assert window.elapsed == 29 * DAY - 2 * HOUR


def test_a_month_with_the_autumn_change_is_an_hour_longer() -> None:
    window = slo_window(utc("2024-10-15T00:00"), 30, "month", "Europe/Paris")
    assert window.start == utc("2024-09-30T22:00")  # midnight, summer time
    assert window.period == 31 * DAY + HOUR  # to 1 November midnight, winter time


def test_a_southern_month_with_the_autumn_change() -> None:
    """Sydney leaves summer time on the first Sunday of April."""
    window = slo_window(utc("2024-04-10T00:00"), 30, "month", "Australia/Sydney")
    assert window.start == utc("2024-03-31T13:00")  # midnight at UTC+11
    assert window.period == 30 * DAY + HOUR


def test_a_quarter_across_a_dst_change() -> None:
    window = slo_window(utc("2024-02-01T00:00"), 30, "quarter", "Europe/Paris")
    assert window.start == utc("2023-12-31T23:00")
    assert window.period == 91 * DAY - HOUR  # 1 Jan (UTC+1) to 1 Apr (UTC+2)


def test_half_hour_zones() -> None:
    window = slo_window(utc("2024-06-30T19:00"), 30, "month", "Asia/Kolkata")
    assert window.start == utc("2024-06-30T18:30")  # 1 July, 00:00 at UTC+5:30
    assert window.elapsed == timedelta(minutes=30)


def test_a_skipped_midnight_starts_the_month_at_the_first_instant_of_its_day() -> None:
    """Asunción moved its clocks from 00:00 to 01:00 on 1 October 2023."""
    window = slo_window(utc("2023-10-10T12:00"), 30, "month", "America/Asuncion")
    assert window.start == utc("2023-10-01T04:00")


def test_a_skipped_midnight_while_now_is_in_a_repeated_hour() -> None:
    """Amman skipped midnight on 1 July 1999 and repeated an hour on 24 September.

    During that repeated hour the quarter still began at the first instant of 1 July, not
    an hour earlier (in June).
    """
    window = slo_window(utc("1999-09-23T22:00"), 30, "quarter", "Asia/Amman")
    assert window.start == utc("1999-06-30T22:00")
    assert window.start.astimezone(ZoneInfo("Asia/Amman")).month == 7


def test_just_after_the_start_the_window_is_at_least_a_minute() -> None:
    window = slo_window(utc("2024-03-01T00:00"), 30, "month", "UTC")
    assert window.elapsed == MIN_WINDOW
    assert window.start == utc("2024-03-01T00:00")


def test_now_in_another_offset_gives_the_same_window() -> None:
    now = utc("2024-05-20T08:00")
    shifted = now.astimezone(timezone(timedelta(hours=5)))
    in_utc = slo_window(now, 30, "quarter", "Europe/Paris")
    elsewhere = slo_window(shifted, 30, "quarter", "Europe/Paris")
    assert elsewhere.start == in_utc.start
    assert elsewhere.elapsed == in_utc.elapsed
    assert elsewhere.period == in_utc.period


ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Asuncion",
    "America/St_Johns",
    "Australia/Lord_Howe",  # a 30-minute DST change
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
]


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.integers(min_value=946_684_800, max_value=2_208_988_800),  # 2000 to 2040
    zone=st.sampled_from(ZONES),
    period=st.sampled_from(["month", "quarter"]),
)
def test_calendar_windows_begin_and_end_at_period_boundaries(
    seconds: int, zone: str, period: str
) -> None:
    now = datetime.fromtimestamp(seconds, UTC)
    window = slo_window(now, 30, period, zone)
    tz = ZoneInfo(zone)
    start = window.start.astimezone(tz)
    end = (window.start + window.period).astimezone(tz)
    just_before = (window.start - timedelta(microseconds=1)).astimezone(tz)
    months = 3 if period == "quarter" else 1

    assert window.start <= now < window.start + window.period
    assert window.elapsed == max(now - window.start, MIN_WINDOW)
    assert start.day == 1
    assert (start.month - 1) % months == 0
    assert just_before.month != start.month  # the first instant of the period
    assert end.day == 1
    assert end.month == (start.month - 1 + months) % 12 + 1
    local = now.astimezone(tz)
    assert (local.year, (local.month - 1) // months) == (start.year, (start.month - 1) // months)
    assert 28 * DAY - HOUR <= window.period <= 92 * DAY + HOUR
