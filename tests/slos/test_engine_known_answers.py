"""The SLO engine against a real Prometheus holding the known-answer dataset: every figure of
`GET /api/slos/{id}` for every job, on SQLite and PostgreSQL.

Exact answers come from evaluating at the dataset's exact `now`; `POST /evaluate` runs at the
wall clock, a little later, and is checked with the dataset's LATE tolerances.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.slos.windows import slo_window
from tests.slos.engine_helpers import (
    BURN_WINDOW_NAMES,
    EXPECTED_COUNTS,
    ROUNDING,
    Dataset,
    dataset_prometheus,
    engine_settings,
    evaluate_at,
    expected_exhaustion_seconds,
    expected_status,
    get_slo,
    new_slo,
    parse_time,
)
from tests.support.api import create_service, create_slo
from tests.support.slo_dataset import (
    EXACT_REL_TOLERANCE,
    EXPECTED,
    JOBS,
    LATE_ABS_TOLERANCE_BUDGET,
    LATE_REL_TOLERANCE,
    Job,
)


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def client(settings: Settings, dataset: Dataset) -> Iterator[TestClient]:
    """An app on this backend, measuring the dataset's Prometheus (no background scheduler)."""
    with TestClient(create_app(engine_settings(settings, dataset.server.url))) as test_client:
        yield test_client


def exact(value: float) -> Any:
    """`value` up to the dataset's exactness and the engine's 6-decimal rounding."""
    return pytest.approx(value, rel=EXACT_REL_TOLERANCE, abs=ROUNDING)


# --- the brief's wall-clock path first, while the dataset's `now` is fresh -----------------


def test_evaluate_endpoint_measures_steady_at_the_wall_clock(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "steady")
    dataset.assert_fresh()
    before = datetime.now(UTC)
    response = client.post(f"/api/slos/{slo['id']}/evaluate")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == get_slo(client, slo["id"])
    assert body["status"] == "healthy"
    assert body["stale"] is False
    assert body["evaluation_error"] is None
    assert before <= parse_time(body["evaluated_at"]) <= datetime.now(UTC)
    assert body["sli_value"] == pytest.approx(99.95, rel=LATE_REL_TOLERANCE)
    assert body["error_budget_remaining"] == pytest.approx(50, abs=100 * LATE_ABS_TOLERANCE_BUDGET)
    assert body["budget_consumed"] == pytest.approx(50, abs=100 * LATE_ABS_TOLERANCE_BUDGET)
    assert set(body["burn_rates"]) == set(BURN_WINDOW_NAMES)
    for window in BURN_WINDOW_NAMES:
        assert body["burn_rates"][window] == pytest.approx(0.5, rel=LATE_REL_TOLERANCE), window
    assert body["time_to_exhaustion_seconds"] == pytest.approx(30 * 86_400, rel=LATE_REL_TOLERANCE)


def test_evaluate_endpoint_pages_on_the_spike_at_the_wall_clock(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "spike")
    dataset.assert_fresh()
    body = client.post(f"/api/slos/{slo['id']}/evaluate").json()
    assert body["status"] == "at_risk"
    for window in ("5m", "30m", "1h", "2h"):
        assert body["burn_rates"][window] == pytest.approx(100, rel=LATE_REL_TOLERANCE), window
    expected = EXPECTED["spike"]
    assert expected.budget_remaining is not None
    assert body["error_budget_remaining"] == pytest.approx(
        100 * expected.budget_remaining, abs=100 * LATE_ABS_TOLERANCE_BUDGET
    )
    active = client.get(f"/api/slos/{slo['id']}/alerts", params={"active": True}).json()["items"]
    assert {alert["severity"] for alert in active} == {"page", "ticket"}


def test_evaluate_endpoint_finds_the_latency_slo_breached_at_the_wall_clock(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "latency")
    dataset.assert_fresh()
    body = client.post(f"/api/slos/{slo['id']}/evaluate").json()
    assert body["status"] == "breached"
    assert body["sli_value"] == pytest.approx(99.8, rel=1e-9)
    assert body["error_budget_remaining"] == pytest.approx(-100, rel=1e-6)
    assert body["time_to_exhaustion_seconds"] == 0


# --- every figure, exactly, at the dataset's `now` ------------------------------------------


@pytest.mark.parametrize("job", JOBS)
def test_every_figure_of_every_job_at_now(client: TestClient, dataset: Dataset, job: Job) -> None:
    slo = new_slo(client, job)
    summary = evaluate_at(client, [slo["id"]], dataset.at)
    assert summary.evaluated == 1
    assert summary.prometheus_available

    body = get_slo(client, slo["id"])
    expected = EXPECTED[job]
    assert body["status"] == expected_status(job)
    assert parse_time(body["evaluated_at"]) == dataset.at
    assert body["stale"] is False
    assert body["evaluation_error"] is None
    assert set(body["burn_rates"]) == set(BURN_WINDOW_NAMES)
    counts = EXPECTED_COUNTS[job]
    exhaustion = expected_exhaustion_seconds(job)

    if not expected.has_data:
        assert counts is None
        assert body["sli_value"] is None
        assert body["error_budget_remaining"] is None
        assert body["budget_consumed"] is None
        assert body["time_to_exhaustion_seconds"] is None
        assert body["good_events"] is None
        assert body["total_events"] is None
        assert all(rate is None for rate in body["burn_rates"].values())
        return

    assert expected.sli is not None
    assert expected.budget_remaining is not None
    assert counts is not None
    assert body["sli_value"] == exact(100 * expected.sli)
    assert body["error_budget_remaining"] == exact(100 * expected.budget_remaining)
    assert body["budget_consumed"] == exact(100 * (1 - expected.budget_remaining))
    for window in BURN_WINDOW_NAMES:
        assert body["burn_rates"][window] == exact(expected.burn_rates[window]), window
    bad, total = counts
    assert body["total_events"] == exact(total)
    assert body["good_events"] == exact(total - bad)
    if exhaustion is None:
        assert body["time_to_exhaustion_seconds"] is None
    else:
        assert body["time_to_exhaustion_seconds"] == pytest.approx(exhaustion, rel=1e-6)


def test_the_brief_s_headline_figures(client: TestClient, dataset: Dataset) -> None:
    """The issue's numbers, written out as literals."""
    ids = {job: new_slo(client, job)["id"] for job in JOBS}
    summary = evaluate_at(client, list(ids.values()), dataset.at)
    assert summary.evaluated == len(JOBS)
    got = {job: get_slo(client, slo_id) for job, slo_id in ids.items()}

    for job in ("steady", "reset"):  # 0.05 % errors against 99.9 %: half the budget left
        assert got[job]["status"] == "healthy"
        assert got[job]["sli_value"] == pytest.approx(99.95, abs=1e-6)
        assert got[job]["error_budget_remaining"] == pytest.approx(50, abs=1e-6)
        assert got[job]["time_to_exhaustion_seconds"] == pytest.approx(2_592_000, rel=1e-6)
    assert got["reset"]["total_events"] == got["steady"]["total_events"] == 4_320_000

    spike = got["spike"]  # pages: 100x on every short window
    assert spike["status"] == "at_risk"
    for window in ("5m", "30m", "1h", "2h"):
        assert spike["burn_rates"][window] == pytest.approx(100, abs=1e-6)
    assert spike["burn_rates"]["6h"] == pytest.approx(101 / 3, abs=1e-6)
    assert spike["error_budget_remaining"] == pytest.approx(22.361111, abs=1e-6)
    # 0.2236111 of 30 days, spent 100 times too fast: 5 796 s.
    assert spike["time_to_exhaustion_seconds"] == pytest.approx(5_796, rel=1e-6)

    assert got["nodata"]["status"] == "no_data"

    latency = got["latency"]
    assert latency["status"] == "breached"
    assert latency["sli_value"] == pytest.approx(99.8, abs=1e-6)
    assert latency["error_budget_remaining"] == pytest.approx(-100, abs=1e-6)
    assert latency["budget_consumed"] == pytest.approx(200, abs=1e-6)
    assert all(rate == pytest.approx(2, abs=1e-6) for rate in latency["burn_rates"].values())

    probe = got["probe"]
    assert probe["status"] == "at_risk"  # less than a quarter of the budget left
    assert probe["sli_value"] == pytest.approx(100 * 43_158 / 43_201, abs=1e-6)
    assert probe["error_budget_remaining"] == pytest.approx(100 * 201 / 43_201, abs=1e-6)
    assert probe["good_events"] == 43_158
    assert probe["total_events"] == 43_201
    assert probe["time_to_exhaustion_seconds"] is None  # no bad sample in the last hour


def test_reset_counts_the_same_events_as_steady(client: TestClient, dataset: Dataset) -> None:
    steady, reset = new_slo(client, "steady"), new_slo(client, "reset")
    evaluate_at(client, [steady["id"], reset["id"]], dataset.at)
    fields = ("sli_value", "error_budget_remaining", "burn_rates", "good_events", "total_events")
    got_steady, got_reset = get_slo(client, steady["id"]), get_slo(client, reset["id"])
    for field in fields:
        assert got_reset[field] == pytest.approx(got_steady[field], rel=1e-9), field


def test_a_good_counter_that_never_appeared_is_a_total_outage_not_a_perfect_sli(
    client: TestClient, dataset: Dataset
) -> None:
    """Requests were served but none was good: the SLI is 0 %, not 100 % (or no data)."""
    service = create_service(client)
    slo = create_slo(
        client,
        service["id"],
        sli={
            "kind": "ratio",
            "good": 'http_requests_total{job="steady",code="204"}',
            "total": 'http_requests_total{job="steady"}',
        },
    )
    evaluate_at(client, [slo["id"]], dataset.at)
    body = get_slo(client, slo["id"])
    assert body["status"] == "breached"
    assert body["sli_value"] == 0
    assert body["good_events"] == 0
    assert body["total_events"] == pytest.approx(4_320_000, rel=1e-9)
    assert body["burn_rates"]["5m"] == pytest.approx(1000, rel=1e-9)
    assert {
        alert["severity"] for alert in client.get(f"/api/slos/{slo['id']}/alerts").json()["items"]
    } == {"page", "ticket"}


@pytest.mark.parametrize("job", ["steady", "spike"])
def test_a_good_counter_gives_the_same_answer_as_an_error_counter(
    client: TestClient, dataset: Dataset, job: Job
) -> None:
    good = create_slo(
        client,
        create_service(client)["id"],
        sli={
            "kind": "ratio",
            "good": f'http_requests_total{{job="{job}",code="200"}}',
            "total": f'http_requests_total{{job="{job}"}}',
        },
    )
    errors = new_slo(client, job)
    evaluate_at(client, [good["id"], errors["id"]], dataset.at)
    got_good, got_errors = get_slo(client, good["id"]), get_slo(client, errors["id"])
    assert got_good["status"] == got_errors["status"]
    for field in ("sli_value", "error_budget_remaining", "good_events", "total_events"):
        assert got_good[field] == pytest.approx(got_errors[field], rel=1e-9), field
    for window in BURN_WINDOW_NAMES:
        assert got_good["burn_rates"][window] == pytest.approx(
            got_errors["burn_rates"][window], rel=1e-9, abs=ROUNDING
        )


def test_a_query_sli_gives_the_ratio_it_computes(client: TestClient, dataset: Dataset) -> None:
    """`{{window}}` is filled in for every window; the result matches the ratio SLI."""
    query = (
        'sum(increase(http_requests_total{job="spike",code="500"}[{{window}}]))'
        ' / sum(increase(http_requests_total{job="spike"}[{{window}}]))'
    )
    slo = create_slo(
        client,
        create_service(client)["id"],
        sli={"kind": "query", "error_ratio_query": query},
    )
    evaluate_at(client, [slo["id"]], dataset.at)
    body = get_slo(client, slo["id"])
    expected = EXPECTED["spike"]
    assert expected.sli is not None
    assert body["status"] == "at_risk"
    assert body["sli_value"] == exact(100 * expected.sli)
    for window in BURN_WINDOW_NAMES:
        assert body["burn_rates"][window] == exact(expected.burn_rates[window]), window
    # A ratio has no counts.
    assert body["good_events"] is None
    assert body["total_events"] is None


def test_latency_with_an_escaped_regex_selector(client: TestClient, dataset: Dataset) -> None:
    """The engine adds `le` to the user's selector without losing its escapes."""
    slo = create_slo(
        client,
        create_service(client)["id"],
        sli={
            "kind": "latency",
            "histogram": 'http_request_duration_seconds_bucket{job=~"lat\\\\w+"}',
            "threshold_seconds": 0.3,
        },
    )
    evaluate_at(client, [slo["id"]], dataset.at)
    body = get_slo(client, slo["id"])
    assert body["evaluation_error"] is None
    assert body["sli_value"] == pytest.approx(99.8, abs=1e-6)
    assert body["status"] == "breached"


@pytest.mark.parametrize("threshold", [0.1, 1.0])
def test_latency_at_other_buckets(client: TestClient, dataset: Dataset, threshold: float) -> None:
    """0.1 s: 90 % fast; 1 s (written `le="1"`, matched also as `1.0`): 99.95 %."""
    slo = create_slo(
        client,
        create_service(client)["id"],
        sli={
            "kind": "latency",
            "histogram": 'http_request_duration_seconds_bucket{job="latency"}',
            "threshold_seconds": threshold,
        },
    )
    evaluate_at(client, [slo["id"]], dataset.at)
    expected_sli = {0.1: 90.0, 1.0: 99.95}[threshold]
    assert get_slo(client, slo["id"])["sli_value"] == pytest.approx(expected_sli, abs=1e-6)


@pytest.mark.parametrize("period", ["month", "quarter"])
def test_a_calendar_slo_counts_its_errors_against_the_whole_period(
    client: TestClient, dataset: Dataset, period: str
) -> None:
    """Steady errors (burn 0.5) spend half of the elapsed share of the period's budget."""
    slo = new_slo(client, "steady", calendar_period=period, timezone="Europe/Paris")
    evaluate_at(client, [slo["id"]], dataset.at)
    body = get_slo(client, slo["id"])
    window = slo_window(dataset.at, 30, period, "Europe/Paris")
    share = window.elapsed / window.period
    remaining = 1 - 0.5 * share
    assert body["status"] == "healthy"
    assert body["sli_value"] == pytest.approx(99.95, abs=1e-6)
    assert body["error_budget_remaining"] == pytest.approx(100 * remaining, abs=1e-5)
    expected_exhaustion = remaining * window.period.total_seconds() / 0.5
    assert body["time_to_exhaustion_seconds"] == pytest.approx(expected_exhaustion, rel=1e-6)


def test_a_7_day_slo_never_alerts_while_spending_below_sustainable(
    client: TestClient, dataset: Dataset
) -> None:
    """For 7 days the slow ticket's scaled factor would be 7/30 (0.233): steady's 0.5 burn
    would raise it although the budget lasts twice the window. Factors stop at 1."""
    slo = new_slo(client, "steady", window_days=7)
    evaluate_at(client, [slo["id"]], dataset.at)
    body = get_slo(client, slo["id"])
    assert body["error_budget_remaining"] == pytest.approx(50, abs=1e-6)
    assert body["time_to_exhaustion_seconds"] == pytest.approx(7 * 86_400, rel=1e-6)
    assert body["status"] == "healthy"
    assert client.get(f"/api/slos/{slo['id']}/alerts").json()["items"] == []


def test_a_7_day_slo_pages_on_the_spike_with_its_scaled_factor(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "spike", window_days=7)
    evaluate_at(client, [slo["id"]], dataset.at)
    active = client.get(f"/api/slos/{slo['id']}/alerts", params={"active": True}).json()["items"]
    page = [alert for alert in active if alert["severity"] == "page"]
    assert [alert["rule"] for alert in page] == ["page_1h_5m"]
    assert page[0]["factor"] == pytest.approx(14.4 * 7 / 30, abs=1e-6)


def test_one_run_measures_many_slos_with_few_queries(client: TestClient, dataset: Dataset) -> None:
    ids = [new_slo(client, job)["id"] for job in JOBS for _ in range(3)]
    started = time.monotonic()
    summary = evaluate_at(client, ids, dataset.at)
    assert summary.evaluated == len(ids)
    # 6 SLIs (each thrice) x 8 windows x 2 counts = 96 distinct expressions, one query.
    assert summary.queries_sent == 1
    assert time.monotonic() - started < 10
    for slo_id in ids:
        assert get_slo(client, slo_id)["evaluated_at"] is not None
