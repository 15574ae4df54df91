"""A known-answer SLO dataset: 30 days of 1-minute samples whose right answers are exact.

`build_dataset(now)` returns the series to backfill into Prometheus (see
`tests/support/prometheus.py`). Sample `k` (k = 0 … 43 200) is at `now - 30 d + 60 k`: the first
sample sits exactly at `now - 30d`, the last exactly at `now`, so a `[30d]` range at `now` holds
all 43 201 samples (Prometheus 2.x range selectors include both ends). Every label set carries
`job="<name>"`; counters start at 0 at sample 0.

Series and their answers, for an evaluation at exactly `now`, objective 99.9 % (budget 0.001):

`steady`  http_requests_total{code="200"} +99.95/min and {code="500"} +0.05/min, so
          `http_requests_total{job="steady"}` (summed over codes) grows by 100/min with 0.05 %
          errors. Error ratio 0.0005 over every window; burn rate 0.5; budget remaining 50 %;
          no alert.
`reset`   The same rates, but the process restarts 10 days before `now`: at that sample both
          counters drop back to one minute's worth (99.95 and 0.05; nothing is lost, as when a
          restarted process counts its first requests before the scrape). `increase()` handles
          the reset: same answers as `steady`, and the same increases (4 320 000 requests, 2 160
          errors over 30 d).
`spike`   100/min total; errors 0.05/min until 2 h before `now`, then 10/min (10 %) for the last
          2 h. Error ratio (burn rate): 5m, 30m, 1h, 2h: 0.1 (100); 6h: 101/3000 ≈ 0.033667
          (33.67); 1d: 211/24000 ≈ 0.0087917 (8.79); 3d: 47/14400 ≈ 0.0032639 (3.26); 30d:
          559/720000 ≈ 0.00077639 (0.776), budget remaining ≈ 22.36 %. Every page and ticket
          condition of the multi-window multi-burn-rate alerts holds.
`nodata`  Nothing at all: an SLO on http_requests_total{job="nodata"} has no data (queries
          return an empty vector).
`latency` A histogram: http_request_duration_seconds_bucket{le="0.1"} +90/min, {le="0.3"}
          +99.8/min, {le="1"} +99.95/min, {le="+Inf"} +100/min, and _count +100/min. The latency
          SLI at 0.3 s is 0.998 over every window; error ratio 0.002, burn rate 2, budget
          remaining -100 % (overspent: breached). No page; the slow ticket (3d & 6h > 1) holds.
`probe`   probe_success gauge: 1, except 0 at every sample with k % 1000 == 500 (43 samples in
          30 d: k = 500, 1500, …, 42 500; the last is 700 min ≈ 11.7 h before `now`). Over [30d]
          at `now`: 43 bad of 43 201 samples, SLI 43 158/43 201 ≈ 0.9990047, budget remaining
          201/43 201 ≈ 0.465 %. The zeros sit mid-way between multiples of 1000 (not at
          k % 1000 == 0) so that neither end of the window holds one: moving the evaluation by
          less than a minute drops or adds a good sample, never a bad one. Windows up to 6 h have
          no bad sample; 1d: 1/1441; 3d: 4/4321.

Tolerances (observed with Prometheus 2.42; tests/support/test_prometheus_harness.py checks them):

- At exactly `now` (pass the evaluation time) every answer above is exact up to float rounding:
  worst relative error 6e-12. Assert with `EXACT_REL_TOLERANCE` (1e-9).
- Evaluated a little *after* `now` (a wall-clock engine), range selectors lose the oldest
  samples and `increase()` extrapolates to the window edges. For `steady`, `reset` and `latency`
  this stays exact (< 1e-9): the counters are linear and start at 0, so extrapolation is right.
  `spike` windows that straddle the start of the spike extrapolate at the window's average rate:
  up to 2.7e-3 relative one minute late (6h window; 1d 6.6e-4, 3d 2.0e-4, 30d 8.2e-6), twice that
  two minutes late. `probe` loses good samples: 1d 6.9e-4, 3d 2.3e-4, 30d 2.3e-5 per minute late.
  Up to two minutes after `now`: `LATE_REL_TOLERANCE` (1e-2) holds for any window,
  `LATE_REL_TOLERANCE_30D` (1e-4) for the 30 d error ratio, and `LATE_ABS_TOLERANCE_BUDGET` (1e-4)
  for the budget remaining as a fraction (`probe`'s 0.465 % is 0.461 % two minutes late).
- `probe`'s windows up to 6 h hold no bad sample: exactly 0, now or two minutes later.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from tests.support.prometheus import Series

MINUTE = 60
WINDOW_DAYS = 30
WINDOW_SECONDS = WINDOW_DAYS * 86_400
WINDOW_MINUTES = WINDOW_SECONDS // MINUTE  # 43 200
LAST = WINDOW_MINUTES  # index of the sample at `now`
SAMPLES_PER_SERIES = LAST + 1  # 43 201
OBJECTIVE = 99.9  # percent
BUDGET = Fraction(1, 1000)  # 1 - objective

RESET_BEFORE_NOW = 10 * 86_400
SPIKE_BEFORE_NOW = 2 * 3600
PROBE_PERIOD = 1000  # one bad probe sample in every 1000 ...
PROBE_PHASE = 500  # ... at k % 1000 == 500

# See the module docstring.
EXACT_REL_TOLERANCE = 1e-9  # evaluated at exactly `now`
LATE_REL_TOLERANCE = 1e-2  # any window, evaluated up to 2 min after `now`
LATE_REL_TOLERANCE_30D = 1e-4  # the 30 d error ratio, evaluated up to 2 min after `now`
LATE_ABS_TOLERANCE_BUDGET = 1e-4  # budget remaining (a fraction), up to 2 min after `now`

# The windows the SRE workbook's multi-window multi-burn-rate alerts use, and the SLO window.
WINDOWS: dict[str, int] = {
    "5m": 300,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "6h": 21_600,
    "1d": 86_400,
    "3d": 259_200,
    "30d": WINDOW_SECONDS,
}

Job = Literal["steady", "reset", "spike", "nodata", "latency", "probe"]
JOBS: tuple[Job, ...] = ("steady", "reset", "spike", "nodata", "latency", "probe")

_RESET_SAMPLE = LAST - RESET_BEFORE_NOW // MINUTE  # first sample after the restart
_SPIKE_FIRST_MINUTE = LAST - SPIKE_BEFORE_NOW // MINUTE + 1  # minute m ends at sample m


def default_now() -> int:
    """The current time, rounded down to the minute (unix seconds)."""
    return int(time.time()) // MINUTE * MINUTE


@dataclass(frozen=True)
class _Counter:
    """A counter whose increase per minute (in hundredths) changes at given minutes.

    `rates` holds `(first_minute, hundredths_per_minute)`; minute m is the increase from sample
    m-1 to sample m. Integers keep every value exact: a value is `hundredths / 100`, which Python
    rounds correctly.
    """

    name: str
    labels: dict[str, str]
    rates: tuple[tuple[int, int], ...]
    reset_sample: int | None = None

    def minute_rates(self) -> list[int]:
        """The increase (hundredths) of every minute; index m is minute m (index 0 is unused)."""
        rates = [0] * SAMPLES_PER_SERIES
        for first_minute, rate in sorted(self.rates):
            rates[first_minute:] = [rate] * (SAMPLES_PER_SERIES - first_minute)
        return rates

    @functools.cached_property
    def counted(self) -> list[int]:
        """Hundredths counted from sample 0 to each sample, ignoring any reset."""
        return list(itertools.accumulate(self.minute_rates()))

    def true_count(self, sample: int) -> int:
        """Hundredths counted from sample 0 to `sample`, ignoring any reset."""
        return self.counted[sample]

    def exposed_hundredths(self) -> list[int]:
        """The value the process exposes at every sample (in hundredths), resets included."""
        values = list(self.counted)
        if self.reset_sample is not None:
            before_restart = values[self.reset_sample - 1]
            for sample in range(self.reset_sample, SAMPLES_PER_SERIES):
                values[sample] -= before_restart
        return values


def _http_counters(job: str, spike: bool = False, reset: bool = False) -> list[_Counter]:
    ok: tuple[tuple[int, int], ...] = ((1, 9995),)
    errors: tuple[tuple[int, int], ...] = ((1, 5),)
    if spike:
        ok = (*ok, (_SPIKE_FIRST_MINUTE, 9000))
        errors = (*errors, (_SPIKE_FIRST_MINUTE, 1000))
    reset_sample = _RESET_SAMPLE if reset else None
    return [
        _Counter("http_requests_total", {"job": job, "code": "200"}, ok, reset_sample),
        _Counter("http_requests_total", {"job": job, "code": "500"}, errors, reset_sample),
    ]


LATENCY_THRESHOLD = "0.3"
_LATENCY_BUCKETS = (("0.1", 9000), ("0.3", 9980), ("1", 9995), ("+Inf", 10_000))


def _latency_counters() -> list[_Counter]:
    job = {"job": "latency"}
    counters = [
        _Counter("http_request_duration_seconds_bucket", {**job, "le": le}, ((1, rate),))
        for le, rate in _LATENCY_BUCKETS
    ]
    counters.append(_Counter("http_request_duration_seconds_count", job, ((1, 10_000),)))
    return counters


COUNTERS: dict[Job, list[_Counter]] = {
    "steady": _http_counters("steady"),
    "reset": _http_counters("reset", reset=True),
    "spike": _http_counters("spike", spike=True),
    "nodata": [],
    "latency": _latency_counters(),
    "probe": [],
}


def probe_value(sample: int) -> int:
    """probe_success at sample k: 0 once in every 1000 samples, else 1."""
    return 0 if sample % PROBE_PERIOD == PROBE_PHASE else 1


def build_dataset(now: int | None = None) -> list[Series]:
    """The dataset's series, with the last sample at `now` (default: this minute)."""
    end = default_now() if now is None else int(now)
    start = end - WINDOW_SECONDS
    times = [start + MINUTE * k for k in range(SAMPLES_PER_SERIES)]
    series: list[Series] = []
    for job in JOBS:
        for counter in COUNTERS[job]:
            values = counter.exposed_hundredths()
            samples = [(float(t), h / 100) for t, h in zip(times, values, strict=True)]
            series.append(Series(counter.name, dict(counter.labels), samples, "counter"))
    probe = [(float(t), float(probe_value(k))) for k, t in enumerate(times)]
    series.append(Series("probe_success", {"job": "probe"}, probe, "gauge"))
    return series


# --- exact answers --------------------------------------------------------------------------


def _window_samples(window_seconds: int) -> int:
    if window_seconds % MINUTE or not 0 < window_seconds <= WINDOW_SECONDS:
        raise ValueError(f"windows are whole minutes up to 30 d, not {window_seconds} s")
    return window_seconds // MINUTE


def _increase(counters: list[_Counter], code: str | None, window_seconds: int) -> int:
    """The true increase (hundredths) over the window ending at `now`, summed over counters."""
    first = LAST - _window_samples(window_seconds)
    return sum(
        c.true_count(LAST) - c.true_count(first)
        for c in counters
        if code is None or c.labels.get("code") == code
    )


def expected_error_ratio(job: Job, window_seconds: int = WINDOW_SECONDS) -> Fraction | None:
    """The exact error ratio (bad / total) over the window ending at `now`; None = no data.

    For counters this is what `increase()` gives at `now`; for `probe` it is the share of bad
    samples among those in the range `[now - window, now]` (both ends included).
    """
    if job == "nodata":
        return None
    if job == "probe":
        first = LAST - _window_samples(window_seconds)
        samples = range(first, LAST + 1)
        bad = sum(1 for k in samples if probe_value(k) == 0)
        return Fraction(bad, len(samples))
    if job == "latency":
        counters = COUNTERS["latency"]
        total_counter = [c for c in counters if c.name.endswith("_count")]
        good_counter = [c for c in counters if c.labels.get("le") == LATENCY_THRESHOLD]
        good = _increase(good_counter, None, window_seconds)
        total = _increase(total_counter, None, window_seconds)
        return 1 - Fraction(good, total)
    total = _increase(COUNTERS[job], None, window_seconds)
    bad = _increase(COUNTERS[job], "500", window_seconds)
    return Fraction(bad, total)


def expected_burn_rate(job: Job, window_seconds: int) -> Fraction | None:
    """The exact burn rate over the window ending at `now` (error ratio / budget)."""
    ratio = expected_error_ratio(job, window_seconds)
    return None if ratio is None else ratio / BUDGET


def expected_budget_remaining(job: Job) -> Fraction | None:
    """The exact share of the 30 d error budget left at `now` (negative when overspent)."""
    ratio = expected_error_ratio(job)
    return None if ratio is None else 1 - ratio / BUDGET


def error_ratio_query(job: Job, window: str) -> str:
    """The PromQL whose value at `now` is `expected_error_ratio(job, WINDOWS[window])`."""
    expected = EXPECTED[job]
    if expected.kind == "bool_gauge":
        return f"1 - avg_over_time({expected.good}[{window}])"
    total = f"sum(increase({expected.total}[{window}]))"
    if expected.kind == "good_ratio":
        return f"1 - sum(increase({expected.good}[{window}])) / {total}"
    return f"sum(increase({expected.bad}[{window}])) / {total}"


SLIKind = Literal["error_ratio", "good_ratio", "bool_gauge"]


@dataclass(frozen=True)
class ExpectedSLO:
    """What an SLO engine must compute at `now` for one job of the dataset (objective 99.9 %).

    Ratios are fractions (0.0005, not 0.05 %). Queries: `error_ratio` SLIs are
    `sum(increase(bad[w])) / sum(increase(total[w]))`; `good_ratio` ones use `good` instead of
    `bad`; a `bool_gauge` SLI is `avg_over_time(good[w])`.
    """

    job: Job
    kind: SLIKind
    total: str | None
    bad: str | None = None
    good: str | None = None
    objective: float = OBJECTIVE
    error_ratio: float | None = None  # over 30 d
    sli: float | None = None  # 1 - error_ratio
    budget_remaining: float | None = None  # 0.5 = 50 % left; negative when overspent
    burn_rates: dict[str, float] = field(default_factory=dict)  # window name -> burn rate
    has_data: bool = True
    breached: bool = False  # budget overspent
    pages: bool = False  # 1h & 5m > 14.4, or 6h & 30m > 6
    tickets: bool = False  # 1d & 2h > 3, or 3d & 6h > 1


def _expected(
    job: Job, kind: SLIKind, total: str | None, bad: str | None = None, good: str | None = None
) -> ExpectedSLO:
    ratio = expected_error_ratio(job)
    if ratio is None:
        return ExpectedSLO(job, kind, total, bad, good, has_data=False)
    burn = {name: float(expected_burn_rate(job, s) or 0) for name, s in WINDOWS.items()}
    remaining = 1 - ratio / BUDGET
    return ExpectedSLO(
        job,
        kind,
        total,
        bad,
        good,
        error_ratio=float(ratio),
        sli=float(1 - ratio),
        budget_remaining=float(remaining),
        burn_rates=burn,
        breached=remaining < 0,
        pages=(burn["1h"] > 14.4 and burn["5m"] > 14.4) or (burn["6h"] > 6 and burn["30m"] > 6),
        tickets=(burn["1d"] > 3 and burn["2h"] > 3) or (burn["3d"] > 1 and burn["6h"] > 1),
    )


def _http(job: str) -> tuple[str, str]:
    return f'http_requests_total{{job="{job}"}}', f'http_requests_total{{job="{job}",code=~"5.."}}'


EXPECTED: dict[Job, ExpectedSLO] = {
    "steady": _expected("steady", "error_ratio", *_http("steady")),
    "reset": _expected("reset", "error_ratio", *_http("reset")),
    "spike": _expected("spike", "error_ratio", *_http("spike")),
    "nodata": _expected("nodata", "error_ratio", *_http("nodata")),
    "latency": _expected(
        "latency",
        "good_ratio",
        'http_request_duration_seconds_count{job="latency"}',
        good=f'http_request_duration_seconds_bucket{{job="latency",le="{LATENCY_THRESHOLD}"}}',
    ),
    "probe": _expected("probe", "bool_gauge", None, good='probe_success{job="probe"}'),
}
"""The answers the SLO tests assert; see the module docstring for the numbers and tolerances."""
