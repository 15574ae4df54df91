"""Anomaly scoring of one metric series against a baseline taken before the incident.

Pure functions, no I/O: the caller fetches a range query (timestamps and values) and hands
it here. Two questions are answered separately, because they need different tools:

- *How abnormal is it?* A robust z-score, (value - median) / (1.4826 * MAD), against the
  baseline. Median and MAD ignore the odd outlier in the baseline, where mean and standard
  deviation would be dragged by it.
- *When did it start?* Change-point detection (`ruptures`, PELT with a least-squares cost),
  which places the start of a step where the level changed, not where the noise first
  happened to cross a threshold. The ranking favours the earliest anomaly, so the start
  time matters as much as the size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from reliability_studio.analysis.findings import (
    ERROR_SURGE,
    LATENCY,
    SATURATION,
    TRAFFIC,
    Finding,
)

Direction = Literal["up", "down", "both"]
SignalName = Literal["error_ratio", "latency", "saturation", "traffic"]

# 1.4826 * MAD estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826
# The scale never falls below 5% of the baseline median: a latency of 200 ms that varied by
# only 1 ms would otherwise make a 5 ms wobble look like a 5-sigma event.
RELATIVE_SCALE_FLOOR = 0.05
# Fewer baseline points than this give a median and a MAD that mean nothing.
MIN_BASELINE_POINTS = 5
# The last 10% of the time between the first sample and the declared incident start is kept
# out of the baseline: alerts fire after their `for:` delay and `rate()` windows lag, so the
# series is often already abnormal shortly before the incident was declared.
BASELINE_MARGIN_FRACTION = 0.10
# Penalty of one extra change point, in units of the noise variance (a BIC-like 3 log n):
# high enough that noise alone does not split the series, low enough for real steps.
PENALTY_PER_LOG_N = 3.0


def robust_z(value: float, baseline: Sequence[float], min_scale: float = 1e-6) -> float:
    """Robust z-score of `value` against `baseline` (NaNs in the baseline are skipped).

    The scale is max(1.4826 * MAD, 5% of |median|, `min_scale`): a perfectly flat baseline
    (an error ratio of exactly 0 for hours) has a MAD of 0, and without the floor any error
    at all would give an infinite or NaN score. Pick `min_scale` in the metric's unit as the
    smallest change worth noticing.
    """
    median, mad = _median_mad(_finite(baseline))
    return (value - median) / _scale(median, mad, min_scale)


@dataclass(frozen=True)
class Anomaly:
    """An episode of a metric past its baseline.

    `started_at` is when the level changed (a change point), `peak_at` when it was furthest
    from the baseline. `score` is in [0, 1] and grows with |peak_z|: see `anomaly_score`.
    """

    started_at: datetime
    peak_at: datetime
    baseline_median: float
    baseline_mad: float
    peak: float
    peak_z: float
    direction: Literal["up", "down"]
    score: float


def anomaly_score(z: float, threshold: float = 4.0) -> float:
    """Confidence in [0, 1] that a robust z-score `z` is abnormal: 1 - 0.5 ** (|z| / threshold).

    0 at z = 0, 0.5 at the threshold, 0.75 at twice the threshold, and each further threshold
    halves the remaining doubt. Monotone in |z| and never saturating abruptly, so two large
    anomalies still rank by size.
    """
    if math.isnan(z):
        return 0.0
    return min(1.0, max(0.0, 1.0 - math.pow(0.5, abs(z) / threshold)))


def detect(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    incident_start: datetime,
    direction: Direction = "up",
    threshold: float = 4.0,
    min_scale: float = 1e-6,
) -> Anomaly | None:
    """Find the anomalous episode of one series around `incident_start`, or None.

    1. NaN (and infinite) samples are dropped; the rest are sorted by time.
    2. A first baseline is every point before `incident_start` minus 10% of the time since
       the first sample (see `BASELINE_MARGIN_FRACTION`). With fewer than 5 points: None.
    3. `ruptures` splits the whole series into segments of constant level. The episode is
       the first segment whose median is past the threshold (robust z against the first
       baseline) and that reaches past that baseline, extended backwards over the adjacent
       segments that are past it too: a step that began before the incident was declared is
       reported with its earlier start. If no segment qualifies (a short spike, or no change
       point), the start is the first point past the threshold after the baseline.
    4. The baseline is then cut at that start so no anomalous point pollutes it (None if that
       leaves fewer than 5 points), and the peak is the furthest point from it from the start
       on. No point past the threshold there: None.
    """
    if len(timestamps) != len(values):
        raise ValueError("timestamps and values must have the same length")
    points = sorted(
        ((t, float(v)) for t, v in zip(timestamps, values, strict=True) if math.isfinite(v)),
        key=lambda point: point[0],
    )
    if not points:
        return None
    times = [t for t, _ in points]
    series = np.array([v for _, v in points], dtype=float)

    cutoff = incident_start - (incident_start - times[0]) * BASELINE_MARGIN_FRACTION
    baseline_end = sum(1 for t in times if t < cutoff)
    if baseline_end < MIN_BASELINE_POINTS:
        return None

    median, mad = _median_mad(series[:baseline_end])
    scale = _scale(median, mad, min_scale)
    start = _episode_start(series, baseline_end, median, scale, direction, threshold, min_scale)
    if start is None:
        return None

    if start < baseline_end:
        if start < MIN_BASELINE_POINTS:
            return None
        baseline_end = start
        median, mad = _median_mad(series[:baseline_end])
        scale = _scale(median, mad, min_scale)

    zs = [(float(v) - median) / scale for v in series[start:]]
    peak_offset = max(range(len(zs)), key=lambda i: _directional(zs[i], direction))
    peak_z = zs[peak_offset]
    if _directional(peak_z, direction) < threshold:
        return None
    return Anomaly(
        started_at=times[start],
        peak_at=times[start + peak_offset],
        baseline_median=median,
        baseline_mad=mad,
        peak=float(series[start + peak_offset]),
        peak_z=peak_z,
        direction="up" if peak_z > 0 else "down",
        score=anomaly_score(peak_z, threshold),
    )


_SIGNALS: dict[SignalName, str] = {
    "error_ratio": ERROR_SURGE,
    "latency": LATENCY,
    "saturation": SATURATION,
    "traffic": TRAFFIC,
}
_LABELS: dict[SignalName, str] = {
    "error_ratio": "Error ratio",
    "latency": "Latency",
    "saturation": "Saturation",
    "traffic": "Traffic",
}


def metric_finding(
    service: str,
    signal_name: SignalName,
    anomaly: Anomaly,
    *,
    query: str,
    link: str | None,
) -> Finding:
    """The evidence a metric anomaly gives, with a one-line title a human can read as is.

    The signal (error surge, latency, ...) is attached only to a rise: every signal means
    "more than the baseline", and a drop in errors or latency is no evidence of them. A drop
    still becomes a finding, without a signal, so it shows in the evidence.
    """
    verb = "rose" if anomaly.direction == "up" else "fell"
    started = _as_utc(anomaly.started_at)
    title = (
        f"{_LABELS[signal_name]} of {service} {verb} from "
        f"{_format(signal_name, anomaly.baseline_median)} to "
        f"{_format(signal_name, anomaly.peak)} at {started:%H:%M} UTC "
        f"(z={_format_z(anomaly.peak_z)})"
    )
    signals = frozenset({_SIGNALS[signal_name]}) if anomaly.direction == "up" else frozenset()
    return Finding(
        kind="metric_anomaly",
        source="prometheus",
        service=service,
        title=title,
        score=anomaly.score,
        started_at=anomaly.started_at,
        query=query,
        link=link,
        figures={
            "signal": signal_name,
            "direction": anomaly.direction,
            "baseline_median": anomaly.baseline_median,
            "baseline_mad": anomaly.baseline_mad,
            "peak": anomaly.peak,
            "peak_z": anomaly.peak_z,
            "started_at": anomaly.started_at.isoformat(),
            "peak_at": anomaly.peak_at.isoformat(),
        },
        signals=signals,
    )


def _episode_start(
    series: np.ndarray,
    baseline_end: int,
    median: float,
    scale: float,
    direction: Direction,
    threshold: float,
    min_scale: float,
) -> int | None:
    """Index where the anomalous episode begins (see `detect`, step 3), or None if none."""
    bounds = [0, *_change_points(series, min_scale)]
    segments = list(itertools.pairwise(bounds))
    levels = [(float(np.median(series[a:b])) - median) / scale for a, b in segments]
    for k, (_, end) in enumerate(segments):
        if end <= baseline_end or _directional(levels[k], direction) < threshold:
            continue
        # Keep the sign of the anchor when walking back, so "both" does not merge a drop
        # followed by a rise into one episode.
        same: Direction = "up" if levels[k] > 0 else "down"
        while k > 0 and _directional(levels[k - 1], same) >= threshold:
            k -= 1
        return segments[k][0]
    for i in range(baseline_end, len(series)):
        if _directional((float(series[i]) - median) / scale, direction) >= threshold:
            return i
    return None


def _change_points(series: np.ndarray, min_scale: float) -> list[int]:
    """Change points of the series' level, as indices where a new segment begins, plus n.

    The series is standardised by a robust estimate of its noise (MAD of first differences,
    which a level shift barely moves), so one penalty fits error ratios and latencies alike.
    """
    n = len(series)
    if n < 4:
        return [n]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(np.diff(series)))) / math.sqrt(2.0)
    signal = (series - float(np.median(series))) / max(noise, min_scale)
    # Imported here: ruptures brings scipy, a second and more of every process's start-up
    # (`serve` must answer /health within 2 s), for a function only analysis runs call.
    import ruptures as rpt  # type: ignore[import-untyped]

    algo = rpt.KernelCPD(kernel="linear", min_size=2).fit(signal.reshape(-1, 1))
    return [int(b) for b in algo.predict(pen=PENALTY_PER_LOG_N * math.log(n))]


def _directional(z: float, direction: Direction) -> float:
    """How far `z` goes in the direction asked for (negative when it goes the other way)."""
    if direction == "up":
        return z
    if direction == "down":
        return -z
    return abs(z)


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def _median_mad(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        raise ValueError("the baseline has no finite value")
    median = float(np.median(values))
    return median, float(np.median(np.abs(values - median)))


def _scale(median: float, mad: float, min_scale: float) -> float:
    return max(MAD_TO_SIGMA * mad, RELATIVE_SCALE_FLOOR * abs(median), min_scale)


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, which is what Prometheus speaks."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _format(signal_name: SignalName, value: float) -> str:
    if signal_name in ("error_ratio", "saturation"):
        return f"{value * 100:.3g}%"
    if signal_name == "latency":
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    return f"{value:.3g} req/s"


def _format_z(z: float) -> str:
    return f"{z:.0f}" if abs(z) >= 10 else f"{z:.1f}"
