"""SLO windows: rolling (the last N days) or calendar (this month or quarter). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

MIN_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class SLOWindow:
    """What to measure now (`elapsed`) and the length the budget is spread over (`period`).

    For a rolling window both are N days. For a calendar window `elapsed` runs from the
    start of the current month or quarter, and `period` is the whole month or quarter.
    """

    elapsed: timedelta
    period: timedelta
    start: datetime


def slo_window(
    now: datetime, window_days: int, calendar_period: str | None, timezone: str
) -> SLOWindow:
    """The window of an SLO at `now`."""
    if calendar_period is None:
        period = timedelta(days=window_days)
        return SLOWindow(elapsed=period, period=period, start=now - period)
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    months = 3 if calendar_period == "quarter" else 1
    first_month = local.month - (local.month - 1) % months
    # fold=0: should `now` fall in a repeated hour, a midnight skipped by a DST change still
    # means the first instant of the day, not an hour before it.
    start = local.replace(
        month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0, fold=0
    )
    end_month = first_month + months
    end = start.replace(year=start.year + (end_month - 1) // 12, month=(end_month - 1) % 12 + 1)
    # Subtract in UTC so that a DST change inside the period is counted correctly.
    elapsed = max(now - start.astimezone(now.tzinfo), MIN_WINDOW)
    period = end.astimezone(now.tzinfo) - start.astimezone(now.tzinfo)
    return SLOWindow(elapsed=elapsed, period=period, start=start.astimezone(now.tzinfo))
