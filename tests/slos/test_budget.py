"""Error-budget arithmetic (budget.py) as the SRE Workbook states it. Pure: no I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.slos.budget import (
    AT_RISK_BUDGET_FRACTION,
    BURN_WINDOWS,
    BurnRateRule,
    Counts,
    budget_remaining,
    burn_rate,
    burn_rate_rules,
    error_budget,
    firing_severities,
    rule_fires,
    slo_status,
    time_to_exhaustion,
)

DAYS_30 = timedelta(days=30)


def rates(**by_window: float | None) -> dict[str, float | None]:
    """Burn rates for every window: 0 unless given."""
    return {window: by_window.get(f"w{window}", 0.0) for window in BURN_WINDOWS}


def test_the_burn_windows_are_the_workbook_s() -> None:
    assert list(BURN_WINDOWS) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert BURN_WINDOWS["3d"] == timedelta(days=3)


def test_the_30_day_factors_are_14_4_6_3_and_1() -> None:
    rules = burn_rate_rules(DAYS_30)
    assert [(r.name, r.factor) for r in rules] == [
        ("page_1h_5m", 14.4),
        ("page_6h_30m", 6.0),
        ("ticket_1d_2h", 3.0),
        ("ticket_3d_6h", 1.0),
    ]
    assert [r.budget_share for r in rules] == [0.02, 0.05, 0.10, 0.10]


@pytest.mark.parametrize("days", [7, 28, 30, 90])
def test_factors_scale_with_the_window(days: int) -> None:
    """factor = budget share x window / long window, never below 1 (sustainable)."""
    factors = [rule.factor for rule in burn_rate_rules(timedelta(days=days))]
    expected = [max(f * days / 30, 1.0) for f in (14.4, 6, 3, 1)]
    assert factors == pytest.approx(expected, abs=1e-6)  # factors are kept to 6 decimals


def test_7_and_28_day_factors_written_out() -> None:
    assert [r.factor for r in burn_rate_rules(timedelta(days=7))] == pytest.approx(
        [3.36, 1.4, 1.0, 1.0],
        abs=1e-6,  # 0.7 and 0.23 would alert below sustainable
    )
    assert [r.factor for r in burn_rate_rules(timedelta(days=28))] == pytest.approx(
        [13.44, 5.6, 2.8, 1.0], abs=1e-6
    )


def test_a_calendar_period_s_factors_use_its_length() -> None:
    march = timedelta(days=31) - timedelta(hours=1)
    assert burn_rate_rules(march)[0].factor == pytest.approx(0.02 * march / timedelta(hours=1))


@pytest.mark.parametrize(
    ("objective", "budget"), [(99.9, 0.001), (99.0, 0.01), (95, 0.05), (99.99, 0.0001)]
)
def test_the_budget_is_one_minus_the_objective(objective: float, budget: float) -> None:
    assert error_budget(objective) == pytest.approx(budget, rel=1e-9)


def test_the_budget_is_exact_in_decimal() -> None:
    """1 - 99.9/100 is 0.0009999999999998899 in binary floating point."""
    assert error_budget(99.9) == 0.001
    assert error_budget(99.0) == 0.01
    assert burn_rate(0.001, 99.9) == 1.0
    assert budget_remaining(0.01, 99.0) == 0.0  # spent exactly: 0, not 8.9e-16
    assert budget_remaining(0.00075, 99.9) == 0.25


def test_burn_rate_and_budget_remaining() -> None:
    assert burn_rate(0.0005, 99.9) == pytest.approx(0.5)
    assert budget_remaining(0.0005, 99.9) == pytest.approx(0.5)
    assert burn_rate(0.1, 99.9) == pytest.approx(100)
    assert budget_remaining(0.002, 99.9) == pytest.approx(-1.0)  # overspent: negative
    assert budget_remaining(0.0, 99.9) == 1.0
    assert burn_rate(0.001, 99.9) == pytest.approx(1.0)


@given(
    ratio=st.floats(min_value=0, max_value=1),
    objective=st.floats(min_value=50, max_value=99.999),
)
def test_remaining_is_one_minus_burn(ratio: float, objective: float) -> None:
    assert budget_remaining(ratio, objective) == pytest.approx(1 - burn_rate(ratio, objective))


def test_counts_give_a_ratio_or_none_without_events() -> None:
    assert Counts(bad=5, total=10_000).error_ratio == 0.0005
    assert Counts(bad=0, total=0).error_ratio is None
    assert Counts(bad=3, total=-1).error_ratio is None
    assert Counts(bad=12, total=10).error_ratio == 1.0  # clamped
    assert Counts(bad=-1, total=10).error_ratio == 0.0


def test_time_to_exhaustion() -> None:
    # Burn rate 1 spends a whole budget in one window.
    assert time_to_exhaustion(1.0, DAYS_30, 1.0) == DAYS_30
    assert time_to_exhaustion(0.5, DAYS_30, 0.5) == DAYS_30
    assert time_to_exhaustion(0.25, DAYS_30, 100.0) == DAYS_30 * 0.0025
    assert time_to_exhaustion(0.0, DAYS_30, 5.0) == timedelta(0)  # already spent
    assert time_to_exhaustion(-1.0, DAYS_30, None) == timedelta(0)
    assert time_to_exhaustion(0.5, DAYS_30, 0.0) is None  # nothing burns: lasts forever
    assert time_to_exhaustion(0.5, DAYS_30, None) is None


@pytest.mark.parametrize(
    ("burns", "fires"),
    [
        ({"w1h": 14.5, "w5m": 14.5}, True),
        ({"w1h": 14.4, "w5m": 100.0}, False),  # strictly above the factor
        ({"w1h": 100.0, "w5m": 1.0}, False),  # the short window has recovered
        ({"w1h": 1.0, "w5m": 100.0}, False),  # a blip: the long window is fine
        ({"w1h": None, "w5m": 100.0}, False),  # no data is not a burn
        ({"w1h": 100.0, "w5m": None}, False),
    ],
)
def test_a_rule_fires_when_both_windows_burn_above_its_factor(
    burns: dict[str, float | None], fires: bool
) -> None:
    page = burn_rate_rules(DAYS_30)[0]
    assert rule_fires(page, rates(**burns)) is fires


def test_firing_takes_the_fastest_rule_of_each_severity() -> None:
    rules = burn_rate_rules(DAYS_30)
    every = rates(**{f"w{window}": 100.0 for window in BURN_WINDOWS})
    firing = firing_severities(rules, every)
    assert {severity: rule.name for severity, rule in firing.items()} == {
        "page": "page_1h_5m",
        "ticket": "ticket_1d_2h",
    }
    slow = firing_severities(rules, rates(w6h=7.0, w30m=7.0, w3d=2.0))
    assert {severity: rule.name for severity, rule in slow.items()} == {
        "page": "page_6h_30m",
        "ticket": "ticket_3d_6h",
    }
    assert firing_severities(rules, rates()) == {}


def test_the_dataset_s_latency_burn_only_tickets() -> None:
    firing = firing_severities(
        burn_rate_rules(DAYS_30), rates(**{f"w{w}": 2.0 for w in BURN_WINDOWS})
    )
    assert list(firing) == ["ticket"]
    assert firing["ticket"].name == "ticket_3d_6h"


def test_status() -> None:
    page = BurnRateRule("page", "1h", "5m", 0.02, 14.4)
    assert slo_status(None, {}) == "no_data"
    assert slo_status(0.0, {}) == "breached"
    assert slo_status(-1.0, {"page": page}) == "breached"
    assert slo_status(0.9, {"page": page}) == "at_risk"
    assert slo_status(AT_RISK_BUDGET_FRACTION - 1e-9, {}) == "at_risk"
    assert slo_status(AT_RISK_BUDGET_FRACTION, {}) == "healthy"
    assert slo_status(0.5, {}) == "healthy"
    assert AT_RISK_BUDGET_FRACTION == 0.25


def test_a_loose_objective_still_pages_on_a_near_total_outage() -> None:
    # At 90 % the budget is 0.1: the 30-day page factor 14.4 would need 144 % errors.
    rules = burn_rate_rules(DAYS_30, objective_percent=90.0)
    assert all(rule.factor * 0.1 <= 0.9 + 1e-9 for rule in rules)
    all_failing = rates(**{f"w{w}": 10.0 for w in BURN_WINDOWS})  # 100 % errors: burn 10
    assert "page" in firing_severities(rules, all_failing)


def test_no_rule_fires_while_spending_slower_than_sustainable() -> None:
    rules = burn_rate_rules(timedelta(days=1))
    assert all(rule.factor >= 1.0 for rule in rules)


def test_rules_that_would_look_past_the_slo_window_are_left_out() -> None:
    long_windows = {rule.long_window for rule in burn_rate_rules(timedelta(days=2))}
    assert long_windows == {"1h", "6h", "1d"}
