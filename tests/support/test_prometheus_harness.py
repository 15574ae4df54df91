"""The Prometheus harness and the known-answer dataset, checked against a real Prometheus 2.42."""

from __future__ import annotations

import dataclasses
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.prometheus import PrometheusServer, Series, find_binary, write_openmetrics
from tests.support.slo_dataset import (
    EXACT_REL_TOLERANCE,
    EXPECTED,
    JOBS,
    LATE_ABS_TOLERANCE_BUDGET,
    LATE_REL_TOLERANCE,
    LATE_REL_TOLERANCE_30D,
    SAMPLES_PER_SERIES,
    WINDOWS,
    Job,
    build_dataset,
    default_now,
    error_ratio_query,
    expected_error_ratio,
)

# The SRE workbook's page condition for a 30 d SLO at 99.9 %, for every job at once.
PAGE_RULES = """
groups:
  - name: slo-burn
    rules:
      - alert: ErrorBudgetBurn
        expr: |
          (
              sum by (job) (increase(http_requests_total{code=~"5.."}[1h]))
            / sum by (job) (increase(http_requests_total[1h]))
          ) > 14.4 * 0.001
          and
          (
              sum by (job) (increase(http_requests_total{code=~"5.."}[5m]))
            / sum by (job) (increase(http_requests_total[5m]))
          ) > 14.4 * 0.001
        labels:
          severity: page
"""


@dataclass
class Loaded:
    """A started server holding the dataset, its `now`, and how long it took to get there."""

    server: PrometheusServer
    now: int
    build_seconds: float
    backfill_seconds: float
    start_seconds: float


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """The dataset backfilled into one Prometheus, with the page rule loaded."""
    rules = tmp_path_factory.mktemp("rules") / "page.yml"
    rules.write_text(PAGE_RULES, encoding="utf-8")
    now = default_now()
    with PrometheusServer() as server:
        began = time.monotonic()
        dataset = build_dataset(now)
        built = time.monotonic()
        server.backfill(dataset)
        backfilled = time.monotonic()
        server.start(rule_files=[rules])
        started = time.monotonic()
        yield Loaded(server, now, built - began, backfilled - built, started - backfilled)


def test_backfill_and_start_are_quick(loaded: Loaded) -> None:
    total = loaded.build_seconds + loaded.backfill_seconds + loaded.start_seconds
    print(  # shown with `pytest -s`
        f"\nbuild {loaded.build_seconds:.2f} s, backfill {loaded.backfill_seconds:.2f} s, "
        f"start {loaded.start_seconds:.2f} s"
    )
    assert total < 30, "promtool makes 2 h blocks (one pass over the file each) without its flag"


# --- the brief's headline answers, at exactly `now` -----------------------------------------


def test_steady_error_ratio(loaded: Loaded) -> None:
    expr = (
        'sum(increase(http_requests_total{job="steady",code="500"}[30d]))'
        ' / sum(increase(http_requests_total{job="steady"}[30d]))'
    )
    assert loaded.server.query_value(expr, loaded.now) == pytest.approx(0.0005, rel=1e-9)


def test_reset_counts_the_same_as_steady(loaded: Loaded) -> None:
    server, now = loaded.server, loaded.now
    ratio = server.query_value(error_ratio_query("reset", "30d"), now)
    assert ratio == pytest.approx(0.0005, rel=1e-9)
    for job in ("steady", "reset"):
        total = f'sum(increase(http_requests_total{{job="{job}"}}[30d]))'
        assert server.query_value(total, now) == pytest.approx(4_320_000, rel=1e-9)
    # The reset is really there: the raw counter went down once.
    resets = server.query('resets(http_requests_total{job="reset"}[30d])', now)
    assert sorted(value for _, value in resets) == [1, 1]


def test_spike_burns_at_100_in_short_windows(loaded: Loaded) -> None:
    for window in ("5m", "30m", "1h", "2h"):
        ratio = loaded.server.query_value(error_ratio_query("spike", window), loaded.now)
        assert ratio == pytest.approx(0.1, rel=1e-9), window


def test_latency_sli_at_threshold(loaded: Loaded) -> None:
    expr = (
        'sum(increase(http_request_duration_seconds_bucket{job="latency",le="0.3"}[30d]))'
        ' / sum(increase(http_request_duration_seconds_count{job="latency"}[30d]))'
    )
    assert loaded.server.query_value(expr, loaded.now) == pytest.approx(0.998, rel=1e-9)


def test_probe_average(loaded: Loaded) -> None:
    expr = 'avg_over_time(probe_success{job="probe"}[30d])'
    assert loaded.server.query_value(expr, loaded.now) == pytest.approx(43_158 / 43_201, rel=1e-12)
    samples = 'count_over_time(probe_success{job="probe"}[30d])'
    assert loaded.server.query_value(samples, loaded.now) == SAMPLES_PER_SERIES


def test_nodata_is_an_empty_vector(loaded: Loaded) -> None:
    for expr in (
        'http_requests_total{job="nodata"}',
        error_ratio_query("nodata", "30d"),
        'sum(increase(http_requests_total{job="nodata"}[30d]))',
    ):
        assert loaded.server.query(expr, loaded.now) == [], expr


# --- every job and window, against the exact answers ----------------------------------------


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("job", [job for job in JOBS if job != "nodata"])
def test_exact_at_now(loaded: Loaded, job: Job, window: str) -> None:
    expected = expected_error_ratio(job, WINDOWS[window])
    assert expected is not None
    measured = loaded.server.query_value(error_ratio_query(job, window), loaded.now)
    assert measured == pytest.approx(float(expected), rel=EXACT_REL_TOLERANCE, abs=1e-15)


@pytest.mark.parametrize("delay", [30, 120])
@pytest.mark.parametrize("job", [job for job in JOBS if job != "nodata"])
def test_within_tolerance_up_to_two_minutes_after_now(loaded: Loaded, job: Job, delay: int) -> None:
    at = loaded.now + delay
    for window, seconds in WINDOWS.items():
        expected = expected_error_ratio(job, seconds)
        assert expected is not None
        measured = loaded.server.query_value(error_ratio_query(job, window), at)
        if expected == 0:
            assert measured == 0, window
        elif window == "30d":
            assert measured == pytest.approx(float(expected), rel=LATE_REL_TOLERANCE_30D)
            remaining = 1 - measured / 0.001
            assert remaining == pytest.approx(
                EXPECTED[job].budget_remaining, abs=LATE_ABS_TOLERANCE_BUDGET
            )
        else:
            assert measured == pytest.approx(float(expected), rel=LATE_REL_TOLERANCE), window


def test_expected_constants() -> None:
    """The documented figures, as literals: the helper and EXPECTED agree with the docstring."""
    assert EXPECTED["steady"].error_ratio == pytest.approx(0.0005, rel=1e-12)
    assert EXPECTED["steady"].budget_remaining == pytest.approx(0.5, rel=1e-12)
    assert EXPECTED["reset"] == dataclasses.replace(
        EXPECTED["steady"],
        job="reset",
        total='http_requests_total{job="reset"}',
        bad='http_requests_total{job="reset",code=~"5.."}',
    )
    spike = EXPECTED["spike"]
    assert spike.burn_rates["1h"] == pytest.approx(100, rel=1e-12)
    assert spike.burn_rates["5m"] == pytest.approx(100, rel=1e-12)
    assert spike.burn_rates["6h"] == pytest.approx(101 / 3, rel=1e-12)
    assert spike.error_ratio == pytest.approx(559 / 720_000, rel=1e-12)
    assert spike.pages
    assert spike.tickets
    assert not spike.breached
    assert not EXPECTED["nodata"].has_data
    assert EXPECTED["nodata"].error_ratio is None
    latency = EXPECTED["latency"]
    assert latency.sli == pytest.approx(0.998, rel=1e-12)
    assert latency.budget_remaining == pytest.approx(-1.0, rel=1e-12)
    assert latency.breached
    probe = EXPECTED["probe"]
    assert probe.sli == pytest.approx(43_158 / 43_201, rel=1e-12)
    assert probe.budget_remaining == pytest.approx(201 / 43_201, rel=1e-12)
    assert not any(e.pages for e in EXPECTED.values() if e.job != "spike")


def test_page_alert_fires_for_the_spike_only(loaded: Loaded) -> None:
    deadline = time.monotonic() + 10
    firing: list[str] = []
    while time.monotonic() < deadline:
        firing = [
            alert["labels"]["job"]
            for alert in loaded.server.alerts()
            if alert["state"] == "firing" and alert["labels"]["alertname"] == "ErrorBudgetBurn"
        ]
        if firing:
            break
        time.sleep(0.2)
    assert firing == ["spike"]


# --- the harness itself ---------------------------------------------------------------------


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_configures_alertmanager_and_stop_frees_the_port(tmp_path: Path) -> None:
    rules = tmp_path / "always.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
        encoding="utf-8",
    )
    with PrometheusServer() as server:
        server.start(rule_files=[rules], alertmanager_url="http://127.0.0.1:1/prefix")
        assert httpx.get(f"{server.url}/-/ready").status_code == 200
        assert server.query("vector(2)") == [({}, 2.0)]
        groups = server.api("rules")["groups"]
        assert [rule["name"] for rule in groups[0]["rules"]] == ["Always"]
        config = server.api("status/config")["yaml"]
        assert "- 127.0.0.1:1\n" in config
        assert "path_prefix: /prefix\n" in config
        assert "evaluation_interval: 1s\n" in config
        assert "scrape_configs" not in config  # nothing is scraped: the data is the backfill
        root = server.root
        server.stop()
        assert not server.running
        assert not _answers(server.port)
        server.stop()  # stopping twice is harmless
    assert not root.exists()


def test_a_failed_start_shows_the_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups: [[[\n", encoding="utf-8")
    with PrometheusServer() as server, pytest.raises(RuntimeError, match=r"broken\.yml"):
        server.start(rule_files=[broken])


def test_find_binary_fails_without_skipping() -> None:
    assert find_binary("promtool").name == "promtool"
    with pytest.raises(pytest.fail.Exception, match="make test-deps"):
        find_binary("no-such-prometheus-binary")


def test_openmetrics_text(tmp_path: Path) -> None:
    path = tmp_path / "x.om"
    series = [
        Series("a_total", {"job": 'q"uo\\te'}, [(20.5, 2.0), (10, 1.0)]),
        Series("g", {}, [(10, math.inf), (11, -0.25)], "gauge"),
        Series("a_total", {"job": "other"}, [(10, 1e-3)]),
    ]
    assert write_openmetrics(series, path) == 5
    assert path.read_text(encoding="utf-8") == (
        "# TYPE a_total unknown\n"
        'a_total{job="q\\"uo\\\\te"} 1 10\n'
        'a_total{job="q\\"uo\\\\te"} 2 20.5\n'
        'a_total{job="other"} 0.001 10\n'
        "# TYPE g gauge\n"
        "g +Inf 10\n"
        "g -0.25 11\n"
        "# EOF\n"
    )
    with pytest.raises(ValueError, match="two samples"):
        write_openmetrics([Series("b", {}, [(1, 1), (1, 2)])], path)
