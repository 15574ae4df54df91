"""Storm control for the timeline, as pure logic.

An incident gets its first few alerts as individual timeline events; after that, alerts
are only counted, and the counts go on the timeline as one summary at most every so
often. A 10,000-alert storm then adds a dozen events, not ten thousand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

ItemT = TypeVar("ItemT")
TOP_NAMES = 5


def split_detail(
    items: Sequence[ItemT], *, detail_used: int, limit: int
) -> tuple[list[ItemT], list[ItemT]]:
    """The items that still get their own event, and the ones to be summarised."""
    room = max(0, limit - detail_used)
    return list(items[:room]), list(items[room:])


def summary_due(
    *, pending: int, last_summary_at: datetime | None, now: datetime, interval: timedelta
) -> bool:
    """Whether counted alerts should go on the timeline now."""
    if pending <= 0:
        return False
    return last_summary_at is None or now - last_summary_at >= interval


def summary_title(firing: int, resolved: int, names: Counter[str]) -> str:
    """One line for a summary event, e.g. "Alert storm: 9,990 more alerts firing"."""
    parts = []
    if firing:
        parts.append(f"{firing:,} more alert{'s' if firing != 1 else ''} firing")
    if resolved:
        parts.append(f"{resolved:,} resolved")
    top = ", ".join(f"{name} x{count:,}" for name, count in names.most_common(TOP_NAMES))
    return f"Alert storm: {' and '.join(parts)}" + (f" (top: {top})" if top else "")
