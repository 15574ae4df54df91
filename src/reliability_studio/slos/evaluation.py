"""Turn measured event counts into an SLO's figures, status and alerts. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from reliability_studio.slos.budget import (
    BURN_WINDOWS,
    AlertSeverity,
    BurnRateRule,
    Counts,
    budget_remaining,
    burn_rate,
    burn_rate_rules,
    firing_severities,
    slo_status,
    time_to_exhaustion,
)
from reliability_studio.slos.windows import SLOWindow

# The burn rate that time to exhaustion is projected from.
EXHAUSTION_WINDOW = "1h"


@dataclass(frozen=True)
class Measurement:
    """What Prometheus said: for each window, counts, or (for `query` SLIs) a ratio."""

    window: Counts | float | None
    burn_windows: dict[str, Counts | float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """An SLO's computed state at one moment."""

    status: str
    sli_value: float | None
    error_budget_remaining: float | None
    budget_consumed: float | None
    burn_rates: dict[str, float | None]
    time_to_exhaustion_seconds: float | None
    good_events: float | None
    total_events: float | None
    firing: dict[AlertSeverity, BurnRateRule]
    rules: list[BurnRateRule]


def error_ratio_of(value: Counts | float | None) -> float | None:
    """The error ratio of a measurement, or None without data."""
    if value is None:
        return None
    if isinstance(value, Counts):
        return value.error_ratio
    return min(max(value, 0.0), 1.0) if value == value else None  # NaN means no data


def evaluate(objective: float, window: SLOWindow, measured: Measurement) -> Evaluation:
    """The SLO's figures from what was measured (percentages are 0-100)."""
    ratio = error_ratio_of(measured.window)
    burn_rates = {
        name: _rounded(burn_rate(r, objective)) if (r := error_ratio_of(v)) is not None else None
        for name, v in ((w, measured.burn_windows.get(w)) for w in BURN_WINDOWS)
    }
    rules = burn_rate_rules(window.period, objective)
    firing = firing_severities(rules, burn_rates)
    counts = measured.window if isinstance(measured.window, Counts) else None
    good = counts.total - counts.bad if counts is not None else None

    if ratio is None:
        return Evaluation(
            status="no_data",
            sli_value=None,
            error_budget_remaining=None,
            budget_consumed=None,
            burn_rates=burn_rates,
            time_to_exhaustion_seconds=None,
            good_events=good,
            total_events=counts.total if counts is not None else None,
            firing=firing,
            rules=rules,
        )

    # The budget is spent over the whole period; a calendar window part-way through has
    # spent `elapsed / period` of its time, and its errors count against the whole budget.
    share_elapsed = window.elapsed / window.period
    remaining = 1.0 - (1.0 - budget_remaining(ratio, objective)) * share_elapsed
    exhaustion = time_to_exhaustion(remaining, window.period, burn_rates.get(EXHAUSTION_WINDOW))
    percent_left = _rounded(100.0 * remaining)
    return Evaluation(
        # From the figure shown, so that "0 % left" is always `breached`, never `at_risk`.
        status=slo_status(percent_left / 100.0, firing),
        sli_value=_rounded(100.0 * (1.0 - ratio)),
        error_budget_remaining=percent_left,
        budget_consumed=_rounded(100.0 * (1.0 - remaining)),
        burn_rates=burn_rates,
        time_to_exhaustion_seconds=exhaustion.total_seconds() if exhaustion is not None else None,
        good_events=good,
        total_events=counts.total if counts is not None else None,
        firing=firing,
        rules=rules,
    )


def _rounded(value: float) -> float:
    return round(value, 6)
