"""From measured counts to an SLO's figures (evaluation.py). Pure: no I/O."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from reliability_studio.slos.budget import BURN_WINDOWS, Counts
from reliability_studio.slos.evaluation import Measurement, error_ratio_of, evaluate
from reliability_studio.slos.windows import SLOWindow, slo_window

NOW = datetime(2024, 3, 11, 0, 0, tzinfo=UTC)
ROLLING = slo_window(NOW, 30, None, "UTC")


def measured(window: Counts | float | None, **burns: Counts | float | None) -> Measurement:
    """A measurement: `window` over the SLO window, each burn window as given or like it."""
    return Measurement(
        window=window, burn_windows={w: burns.get(f"w{w}", window) for w in BURN_WINDOWS}
    )


def test_steady_errors_leave_half_the_budget() -> None:
    result = evaluate(99.9, ROLLING, measured(Counts(bad=2_160, total=4_320_000)))
    assert result.status == "healthy"
    assert result.sli_value == pytest.approx(99.95)
    assert result.error_budget_remaining == pytest.approx(50)
    assert result.budget_consumed == pytest.approx(50)
    assert result.burn_rates == {w: pytest.approx(0.5) for w in BURN_WINDOWS}
    assert result.good_events == 4_320_000 - 2_160
    assert result.total_events == 4_320_000
    assert result.time_to_exhaustion_seconds == pytest.approx(30 * 86_400)
    assert result.firing == {}
    assert [rule.factor for rule in result.rules] == [14.4, 6, 3, 1]


def test_no_events_is_no_data() -> None:
    result = evaluate(99.9, ROLLING, measured(None))
    assert result.status == "no_data"
    assert result.sli_value is None
    assert result.error_budget_remaining is None
    assert result.budget_consumed is None
    assert result.time_to_exhaustion_seconds is None
    assert result.burn_rates == dict.fromkeys(BURN_WINDOWS)
    assert result.good_events is None
    assert result.total_events is None


def test_zero_events_is_no_data_but_keeps_the_counts() -> None:
    result = evaluate(99.9, ROLLING, measured(Counts(bad=0, total=0)))
    assert result.status == "no_data"
    assert result.total_events == 0
    assert result.good_events == 0


def test_an_overspent_budget_is_breached_and_exhausted() -> None:
    result = evaluate(99.9, ROLLING, measured(Counts(bad=2, total=1_000)))
    assert result.status == "breached"
    assert result.sli_value == pytest.approx(99.8)
    assert result.error_budget_remaining == pytest.approx(-100)
    assert result.budget_consumed == pytest.approx(200)
    assert result.time_to_exhaustion_seconds == 0


def test_exactly_spent_is_breached() -> None:
    result = evaluate(99.0, ROLLING, measured(Counts(bad=1, total=100)))
    assert result.error_budget_remaining == pytest.approx(0, abs=1e-6)
    assert result.status == "breached"


@pytest.mark.parametrize(
    ("bad", "status"),
    [(749, "healthy"), (750, "healthy"), (751, "at_risk"), (999, "at_risk"), (1_000, "breached")],
)
def test_at_risk_below_a_quarter_of_the_budget(bad: int, status: str) -> None:
    # Budget 0.001 of 1 000 000 events: 1 000 bad events. 750 leave exactly 25 %.
    counts = Counts(bad=bad, total=1_000_000)
    quiet = measured(counts, **{f"w{w}": Counts(bad=0, total=1_000) for w in BURN_WINDOWS})
    result = evaluate(99.9, ROLLING, quiet)
    assert result.status == status
    assert result.firing == {}


def test_a_firing_alert_makes_a_healthy_budget_at_risk() -> None:
    spike = Counts(bad=100, total=1_000)  # 10 % errors: burn rate 100
    result = evaluate(
        99.9, ROLLING, measured(Counts(bad=10, total=1_000_000), w5m=spike, w1h=spike)
    )
    assert result.error_budget_remaining == pytest.approx(99)
    assert result.status == "at_risk"
    assert list(result.firing) == ["page"]
    assert result.firing["page"].name == "page_1h_5m"
    # 0.99 of the budget, spent at 100x the sustainable rate: 0.99 x 30 d / 100.
    assert result.time_to_exhaustion_seconds == pytest.approx(0.99 * 30 * 86_400 / 100)


def test_time_to_exhaustion_uses_the_1h_burn_rate() -> None:
    result = evaluate(
        99.9,
        ROLLING,
        measured(Counts(bad=500, total=1_000_000), w1h=Counts(bad=2, total=1_000)),
    )
    assert result.burn_rates["1h"] == pytest.approx(2)
    assert result.time_to_exhaustion_seconds == pytest.approx(0.5 * 30 * 86_400 / 2)


def test_nothing_burning_in_the_last_hour_lasts_forever() -> None:
    no_errors = Counts(bad=0, total=100)
    result = evaluate(99.9, ROLLING, measured(Counts(bad=500, total=1_000_000), w1h=no_errors))
    assert result.burn_rates["1h"] == 0
    assert result.time_to_exhaustion_seconds is None
    no_traffic = evaluate(99.9, ROLLING, measured(Counts(bad=5, total=10_000), w1h=None))
    assert no_traffic.burn_rates["1h"] is None
    assert no_traffic.time_to_exhaustion_seconds is None


def test_a_calendar_window_projects_its_errors_onto_the_whole_period() -> None:
    """10 of 30 days gone at burn rate 0.5: a sixth of the period's budget spent."""
    window = SLOWindow(elapsed=timedelta(days=10), period=timedelta(days=30), start=NOW)
    result = evaluate(99.9, window, measured(Counts(bad=500, total=1_000_000)))
    assert result.sli_value == pytest.approx(99.95)
    assert result.error_budget_remaining == pytest.approx(100 * (1 - 0.5 / 3))
    assert result.budget_consumed == pytest.approx(100 * 0.5 / 3)
    assert result.status == "healthy"
    remaining = 1 - 0.5 / 3
    assert result.time_to_exhaustion_seconds == pytest.approx(remaining * 30 * 86_400 / 0.5)


def test_a_calendar_window_can_be_breached_before_its_end() -> None:
    window = SLOWindow(elapsed=timedelta(days=15), period=timedelta(days=30), start=NOW)
    result = evaluate(99.9, window, measured(Counts(bad=2_000, total=1_000_000)))  # burn 2
    assert result.error_budget_remaining == pytest.approx(0, abs=1e-6)
    assert result.status == "breached"


def test_a_calendar_window_uses_the_period_s_factors() -> None:
    march = slo_window(NOW, 30, "month", "UTC")
    result = evaluate(99.9, march, measured(Counts(bad=0, total=1)))
    assert result.rules[0].factor == pytest.approx(0.02 * 31 * 24)


def test_query_slis_give_ratios_without_counts() -> None:
    result = evaluate(99.9, ROLLING, measured(0.0005))
    assert result.sli_value == pytest.approx(99.95)
    assert result.good_events is None
    assert result.total_events is None
    assert evaluate(99.9, ROLLING, measured(math.nan)).status == "no_data"


def test_error_ratios_are_clamped() -> None:
    assert error_ratio_of(None) is None
    assert error_ratio_of(math.nan) is None
    assert error_ratio_of(-0.5) == 0
    assert error_ratio_of(3.0) == 1
    assert error_ratio_of(Counts(bad=1, total=4)) == 0.25


def test_figures_are_rounded_to_6_decimals() -> None:
    result = evaluate(99.9, ROLLING, measured(Counts(bad=43, total=43_201)))
    assert result.sli_value == round(100 * 43_158 / 43_201, 6)
    assert result.burn_rates["5m"] == round(43 / 43_201 / (1 - 0.999), 6)


def test_a_budget_spent_exactly_is_breached_whatever_the_float_noise() -> None:
    """20 of 31 days at burn rate 1.55 spend exactly the whole budget (1.55 x 20/31 = 1).

    In floating point the remainder comes out as 1.1e-16: shown as 0 %, it must read
    `breached`, not `at_risk`.
    """
    window = SLOWindow(elapsed=timedelta(days=20), period=timedelta(days=31), start=NOW)
    result = evaluate(99.9, window, measured(Counts(bad=155, total=100_000)))
    assert result.error_budget_remaining == 0
    assert result.status == "breached"
    assert result.time_to_exhaustion_seconds is not None
