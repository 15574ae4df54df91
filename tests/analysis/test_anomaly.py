"""Anomaly scoring: robust z-scores against a baseline, and when the anomaly started."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability_studio.analysis.anomaly import (
    Anomaly,
    anomaly_score,
    detect,
    metric_finding,
    robust_z,
)
from reliability_studio.analysis.findings import ERROR_SURGE, LATENCY, SATURATION, TRAFFIC

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=15)
N = 240  # one hour at a 15 s step


def times(n: int = N) -> list[datetime]:
    return [T0 + i * STEP for i in range(n)]


def step_series(before: float, after: float, at: int, n: int = N) -> list[float]:
    return [before if i < at else after for i in range(n)]


def noisy_step(seed: int, at: int, n: int = N) -> list[float]:
    """Error ratio around 1% (noise 0.3%), then around 20% (noise 3%) from index `at`."""
    rng = np.random.default_rng(seed)
    low, high = rng.normal(0.01, 0.003, n), rng.normal(0.2, 0.03, n)
    return [float(max(0.0, low[i] if i < at else high[i])) for i in range(n)]


# --- robust_z ---------------------------------------------------------------------------


def test_robust_z_is_distance_from_the_median_in_mad_units() -> None:
    baseline = [1.0, 2.0, 3.0, 4.0, 100.0]  # median 3, MAD 1: the outlier does not count
    assert robust_z(6.0, baseline) == pytest.approx(3.0 / 1.4826)


def test_robust_z_of_a_flat_zero_baseline_is_finite() -> None:
    z = robust_z(0.05, [0.0] * 20, min_scale=0.001)
    assert math.isfinite(z)
    assert z == pytest.approx(50.0)


def test_robust_z_scale_never_falls_below_five_percent_of_the_median() -> None:
    assert robust_z(210.0, [200.0] * 10) == pytest.approx(1.0)


# --- detect -----------------------------------------------------------------------------


def test_a_clean_step_is_found_with_its_exact_start() -> None:
    ts = times()
    anomaly = detect(ts, step_series(0.01, 0.2, at=150), incident_start=ts[160])
    assert anomaly is not None
    assert anomaly.started_at == ts[150]
    assert anomaly.direction == "up"
    assert anomaly.baseline_median == pytest.approx(0.01)
    assert anomaly.peak == pytest.approx(0.2)


@pytest.mark.parametrize("seed", range(10))
def test_a_noisy_step_is_found_within_one_step(seed: int) -> None:
    ts = times()
    at = 130 + 7 * seed
    anomaly = detect(ts, noisy_step(seed, at), incident_start=ts[min(at + 8, N - 1)])
    assert anomaly is not None
    assert abs(anomaly.started_at - ts[at]) <= STEP


def test_errors_after_a_flat_zero_baseline_are_an_anomaly() -> None:
    ts = times()
    rng = np.random.default_rng(7)
    values = [0.0 if i < 150 else float(rng.uniform(0.05, 0.15)) for i in range(N)]
    anomaly = detect(ts, values, incident_start=ts[160], min_scale=0.001)
    assert anomaly is not None
    assert anomaly.started_at == ts[150]
    assert anomaly.baseline_mad == 0.0
    assert math.isfinite(anomaly.peak_z)


def test_a_spike_under_the_threshold_is_not_an_anomaly() -> None:
    ts = times()
    rng = np.random.default_rng(3)
    values = [float(v) for v in rng.normal(0.01, 0.003, N)]
    values[200] = 0.016  # about 2 sigma
    assert detect(ts, values, incident_start=ts[190]) is None


def test_a_drop_is_found_when_looking_down() -> None:
    ts = times()
    values = step_series(100.0, 10.0, at=150)
    anomaly = detect(ts, values, incident_start=ts[160], direction="down")
    assert anomaly is not None
    assert anomaly.direction == "down"
    assert anomaly.peak_z < 0
    assert anomaly.started_at == ts[150]


def test_a_drop_is_found_when_looking_both_ways() -> None:
    ts = times()
    anomaly = detect(ts, step_series(100.0, 10.0, at=150), incident_start=ts[160], direction="both")
    assert anomaly is not None
    assert anomaly.direction == "down"


def test_a_drop_is_ignored_when_looking_up() -> None:
    ts = times()
    assert detect(ts, step_series(100.0, 10.0, at=150), incident_start=ts[160]) is None


def test_too_little_baseline_gives_no_anomaly() -> None:
    ts = times(20)
    assert detect(ts, step_series(0.01, 0.2, at=4, n=20), incident_start=ts[4]) is None


def test_an_incident_before_every_sample_gives_no_anomaly() -> None:
    ts = times()
    assert detect(ts, step_series(0.01, 0.2, at=150), incident_start=T0 - STEP) is None


def test_nan_samples_are_skipped() -> None:
    ts = times()
    values = step_series(0.01, 0.2, at=150)
    for i in (10, 50, 149, 151, 200):
        values[i] = math.nan
    anomaly = detect(ts, values, incident_start=ts[160])
    assert anomaly is not None
    assert anomaly.started_at == ts[150]
    assert math.isfinite(anomaly.baseline_median)
    assert math.isfinite(anomaly.peak_z)


def test_an_anomaly_that_began_before_the_incident_is_reported_with_its_earlier_start() -> None:
    ts = times()
    anomaly = detect(ts, noisy_step(11, at=120), incident_start=ts[220])
    assert anomaly is not None
    assert abs(anomaly.started_at - ts[120]) <= STEP
    assert anomaly.baseline_median == pytest.approx(0.01, abs=0.002)  # the step is kept out


def test_the_peak_is_the_point_furthest_from_the_baseline() -> None:
    ts = times()
    values = step_series(0.01, 0.2, at=150)
    values[180] = 0.5
    anomaly = detect(ts, values, incident_start=ts[160])
    assert anomaly is not None
    assert anomaly.peak_at == ts[180]
    assert anomaly.peak == 0.5


def test_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        detect(times(10), [0.0] * 9, incident_start=T0)


# --- score ------------------------------------------------------------------------------


def test_score_is_half_at_the_threshold_and_grows_with_z() -> None:
    assert anomaly_score(0.0) == 0.0
    assert anomaly_score(4.0, threshold=4.0) == pytest.approx(0.5)
    scores = [anomaly_score(z) for z in (1.0, 4.0, 8.0, 20.0, 40.0)]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)


def test_score_of_a_drop_depends_on_its_size_only() -> None:
    assert anomaly_score(-8.0) == anomaly_score(8.0)


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(0.1, 100.0))
def test_score_is_always_within_zero_and_one(z: float, threshold: float) -> None:
    assert 0.0 <= anomaly_score(z, threshold) <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(100, 200),
    height=st.floats(20.0, 100.0),
    shift=st.floats(-50.0, 50.0),
)
def test_shifting_every_value_by_a_constant_keeps_the_start(
    seed: int, at: int, height: float, shift: float
) -> None:
    ts = times()
    noise = np.random.default_rng(seed).normal(0.0, 1.0, N)
    values = [float(noise[i] + (height if i >= at else 0.0)) for i in range(N)]
    incident = ts[min(at + 8, N - 1)]
    plain = detect(ts, values, incident_start=incident)
    shifted = detect(ts, [v + shift for v in values], incident_start=incident)
    assert plain is not None
    assert shifted is not None
    assert shifted.started_at == plain.started_at
    assert 0.0 <= shifted.score <= 1.0


# --- metric_finding ---------------------------------------------------------------------


def anomaly(direction: str = "up", peak: float = 0.18, peak_z: float = 42.3) -> Anomaly:
    return Anomaly(
        started_at=datetime(2024, 5, 1, 10, 4, 30, tzinfo=UTC),
        peak_at=datetime(2024, 5, 1, 10, 9, tzinfo=UTC),
        baseline_median=0.002,
        baseline_mad=0.0005,
        peak=peak,
        peak_z=peak_z,
        direction="up" if direction == "up" else "down",
        score=0.9,
    )


def test_an_error_ratio_finding_reads_as_one_line() -> None:
    finding = metric_finding(
        "checkout", "error_ratio", anomaly(), query="sum(rate(x[5m]))", link="http://p/graph"
    )
    assert finding.title == "Error ratio of checkout rose from 0.2% to 18% at 10:04 UTC (z=42)"
    assert finding.kind == "metric_anomaly"
    assert finding.source == "prometheus"
    assert finding.service == "checkout"
    assert finding.score == 0.9
    assert finding.started_at == datetime(2024, 5, 1, 10, 4, 30, tzinfo=UTC)
    assert finding.query == "sum(rate(x[5m]))"
    assert finding.link == "http://p/graph"


def test_a_finding_carries_the_figures_behind_it() -> None:
    finding = metric_finding("checkout", "error_ratio", anomaly(), query="q", link=None)
    assert finding.figures == {
        "signal": "error_ratio",
        "direction": "up",
        "baseline_median": 0.002,
        "baseline_mad": 0.0005,
        "peak": 0.18,
        "peak_z": 42.3,
        "started_at": "2024-05-01T10:04:30+00:00",
        "peak_at": "2024-05-01T10:09:00+00:00",
    }


@pytest.mark.parametrize(
    ("signal_name", "signal"),
    [
        ("error_ratio", ERROR_SURGE),
        ("latency", LATENCY),
        ("saturation", SATURATION),
        ("traffic", TRAFFIC),
    ],
)
def test_a_rise_carries_the_signal_of_its_metric(signal_name: str, signal: str) -> None:
    finding = metric_finding("api", signal_name, anomaly(), query="q", link=None)  # type: ignore[arg-type]
    assert finding.signals == frozenset({signal})


def test_a_drop_carries_no_signal() -> None:
    drop = anomaly(direction="down", peak=0.0, peak_z=-6.0)
    finding = metric_finding("api", "traffic", drop, query="q", link=None)
    assert finding.signals == frozenset()
    assert " fell from " in finding.title


def test_a_latency_finding_speaks_in_milliseconds() -> None:
    slow = Anomaly(
        started_at=datetime(2024, 5, 1, 10, 4),
        peak_at=datetime(2024, 5, 1, 10, 9),
        baseline_median=0.12,
        baseline_mad=0.01,
        peak=2.5,
        peak_z=8.04,
        direction="up",
        score=0.75,
    )
    finding = metric_finding("search", "latency", slow, query="q", link=None)
    assert finding.title == "Latency of search rose from 120 ms to 2.5 s at 10:04 UTC (z=8.0)"
