"""Error-budget arithmetic (Google SRE Workbook, "Alerting on SLOs"). Pure, no I/O.

Ratios are computed from event counts over a window (bad / total), never by averaging
shorter ratios, which biases the result whenever traffic is uneven.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

AlertSeverity = Literal["page", "ticket"]

# Burn-rate windows the engine keeps for every SLO, shortest first.
BURN_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}

# Below this share of budget left (and above zero), an SLO is `at_risk`.
AT_RISK_BUDGET_FRACTION = 0.25


@dataclass(frozen=True)
class Counts:
    """Bad and total events over one window."""

    bad: float
    total: float

    @property
    def error_ratio(self) -> float | None:
        """bad / total, or None when there were no events."""
        if self.total <= 0:
            return None
        return min(max(self.bad / self.total, 0.0), 1.0)


def error_budget(objective_percent: float) -> float:
    """The share of events allowed to fail: 1 - objective (99.9 → 0.001).

    In decimal, as the objective was written: in binary floating point 1 - 99.9/100 is
    0.0009999999999998899, which puts a budget spent exactly (remaining 0) a hair above
    zero, and so `at_risk` instead of `breached`.
    """
    return float((100 - Decimal(repr(float(objective_percent)))) / 100)


def burn_rate(error_ratio: float, objective_percent: float) -> float:
    """How many times faster than sustainable the budget is being spent."""
    return error_ratio / error_budget(objective_percent)


def budget_remaining(error_ratio: float, objective_percent: float) -> float:
    """Share of the window's budget left: 1 - e/B. Negative once overspent."""
    return 1.0 - burn_rate(error_ratio, objective_percent)


def time_to_exhaustion(
    remaining_fraction: float, window: timedelta, current_burn_rate: float | None
) -> timedelta | None:
    """How long the remaining budget lasts at the current burn rate.

    Zero once the budget is spent; None when nothing is burning (it lasts forever).
    A burn rate of 1 spends a whole budget in exactly one window.
    """
    if remaining_fraction <= 0:
        return timedelta(0)
    if current_burn_rate is None or current_burn_rate <= 0:
        return None
    return window * (remaining_fraction / current_burn_rate)


@dataclass(frozen=True)
class BurnRateRule:
    """Alert when both windows burn faster than `factor` (multi-window, multi-burn-rate)."""

    severity: AlertSeverity
    long_window: str
    short_window: str
    budget_share: float
    factor: float

    @property
    def name(self) -> str:
        """A stable identifier, e.g. `page_1h_5m`."""
        return f"{self.severity}_{self.long_window}_{self.short_window}"


# (severity, long window, short window, share of the budget spent in the long window).
# For a 30-day window these give the Workbook's factors 14.4, 6, 3 and 1.
_POLICY: tuple[tuple[AlertSeverity, str, str, float], ...] = (
    ("page", "1h", "5m", 0.02),
    ("page", "6h", "30m", 0.05),
    ("ticket", "1d", "2h", 0.10),
    ("ticket", "3d", "6h", 0.10),
)


# Where the policy's factor is out of reach (a loose objective, where even a total outage
# burns slower than the factor), the rule fires at this share of events failing instead.
MAX_ALERT_ERROR_RATIO = 0.9


def burn_rate_rules(window: timedelta, objective_percent: float = 99.9) -> list[BurnRateRule]:
    """The alert rules for an SLO window: factor = budget share * window / long window.

    Two guards keep every rule meaningful: a rule whose long window is not shorter than
    the SLO window is left out (it would look past the window), and a factor is kept
    between 1 (never alert while spending slower than sustainable) and the burn rate at
    which `MAX_ALERT_ERROR_RATIO` of events fail (above that no outage could reach it).
    """
    ceiling = MAX_ALERT_ERROR_RATIO / error_budget(objective_percent)
    rules = []
    for severity, long_window, short_window, share in _POLICY:
        if BURN_WINDOWS[long_window] >= window:
            continue
        factor = min(max(share * (window / BURN_WINDOWS[long_window]), 1.0), ceiling)
        rules.append(BurnRateRule(severity, long_window, short_window, share, round(factor, 6)))
    return rules


def rule_fires(rule: BurnRateRule, burn_rates: dict[str, float | None]) -> bool:
    """True when both of the rule's windows burn faster than its factor."""
    long_rate = burn_rates.get(rule.long_window)
    short_rate = burn_rates.get(rule.short_window)
    if long_rate is None or short_rate is None:
        return False
    return long_rate > rule.factor and short_rate > rule.factor


def firing_severities(
    rules: list[BurnRateRule], burn_rates: dict[str, float | None]
) -> dict[AlertSeverity, BurnRateRule]:
    """For each severity that fires, the first rule (the fastest) that makes it fire."""
    firing: dict[AlertSeverity, BurnRateRule] = {}
    for rule in rules:
        if rule.severity not in firing and rule_fires(rule, burn_rates):
            firing[rule.severity] = rule
    return firing


def slo_status(
    remaining_fraction: float | None, firing: dict[AlertSeverity, BurnRateRule]
) -> Literal["healthy", "at_risk", "breached", "no_data"]:
    """`breached` once the budget is spent, `at_risk` while an alert fires or little is
    left, `no_data` without events, else `healthy`."""
    if remaining_fraction is None:
        return "no_data"
    if remaining_fraction <= 0:
        return "breached"
    if firing or remaining_fraction < AT_RISK_BUDGET_FRACTION:
        return "at_risk"
    return "healthy"
