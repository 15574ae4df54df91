"""Batched measurement against a real Prometheus: many SLOs cost few HTTP queries, identical
expressions are sent once, and one query Prometheus refuses never blinds the other SLOs.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest

from reliability_studio.slos.batch import TAG, _joined, run_batched
from reliability_studio.slos.budget import Counts
from reliability_studio.slos.engine import SLI_ADAPTER, PassResult, SLOSpec, measure
from reliability_studio.telemetry.prometheus import PrometheusClient, PrometheusUnavailableError
from tests.slos.engine_helpers import BURN_WINDOW_NAMES, Dataset, dataset_prometheus, sli_for
from tests.support.postgres import free_port
from tests.support.slo_dataset import EXACT_REL_TOLERANCE, EXPECTED, JOBS, Job

T = TypeVar("T")

# Parses locally, fails when Prometheus runs it: two series on the right of `/ on()`.
REFUSED_QUERY = (
    'sum(rate(http_requests_total{job="steady"}[{{window}}]))'
    ' / on() rate(http_requests_total{job="steady"}[{{window}}])'
)


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


def with_client(url: str, use: Callable[[PrometheusClient], Awaitable[T]], **options: Any) -> T:
    """Run `use(client)` with a fresh client of `url`, in a fresh event loop."""

    async def run() -> T:
        client = PrometheusClient(url, **options)
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(run())


def spec(sli: dict[str, Any], **fields: Any) -> SLOSpec:
    """An SLO spec (99.9 %, 30 d rolling unless given)."""
    values: dict[str, Any] = {
        "objective": 99.9,
        "window_days": 30,
        "calendar_period": None,
        "timezone": "UTC",
        **fields,
    }
    return SLOSpec(id=uuid.uuid4(), sli=SLI_ADAPTER.validate_python(sli), **values)


def distinct_sli(job: Job, index: int) -> dict[str, Any]:
    """`job`'s SLI with one more matcher that changes nothing but the text of its queries."""
    extra = f'instance!="nowhere-{index}"'
    sli = sli_for(job)
    for field in ("errors", "total", "histogram", "metric"):
        if field in sli:
            selector: str = sli[field]
            sli[field] = selector[:-1] + "," + extra + "}"
    return sli


def measure_at(dataset: Dataset, specs: list[SLOSpec], **options: Any) -> PassResult:
    """`measure()` at the dataset's `now`."""
    return with_client(
        dataset.server.url, lambda client: measure(client, specs, dataset.at, **options)
    )


def assert_expected(result: PassResult, slo: SLOSpec, job: Job) -> None:
    """The SLO's evaluation has the dataset's answers for `job`."""
    outcome = result.outcomes[slo.id]
    assert outcome.error is None
    assert outcome.evaluation is not None
    expected = EXPECTED[job]
    evaluation = outcome.evaluation
    if not expected.has_data:
        assert evaluation.status == "no_data"
        return
    assert expected.sli is not None
    assert evaluation.sli_value == pytest.approx(
        100 * expected.sli, rel=EXACT_REL_TOLERANCE, abs=1e-6
    )
    for window in BURN_WINDOW_NAMES:
        assert evaluation.burn_rates[window] == pytest.approx(
            expected.burn_rates[window], rel=EXACT_REL_TOLERANCE, abs=1e-6
        ), window


def test_many_slos_cost_far_fewer_queries_than_expressions(dataset: Dataset) -> None:
    jobs = [job for job in JOBS for _ in range(20)]  # 120 SLOs
    specs = [spec(distinct_sli(job, index)) for index, job in enumerate(jobs)]
    result = measure_at(dataset, specs)
    # 120 SLOs x 8 windows (the SLO's and 7 burn windows) x 2 counts, all distinct.
    assert result.expressions == 120 * 8 * 2
    assert result.queries_sent == math.ceil(result.expressions / 100)
    for slo, job in zip(specs, jobs, strict=True):
        assert_expected(result, slo, job)


def test_identical_expressions_are_sent_once(dataset: Dataset) -> None:
    same = [spec(sli_for("steady")) for _ in range(50)]
    result = measure_at(dataset, same)
    assert result.expressions == 8 * 2
    assert result.queries_sent == 1
    for slo in same:
        assert_expected(result, slo, "steady")


def test_slos_sharing_a_total_share_its_expressions(dataset: Dataset) -> None:
    errors = spec(sli_for("steady"))
    good = spec(
        {
            "kind": "ratio",
            "good": 'http_requests_total{job="steady",code="200"}',
            "total": 'http_requests_total{job="steady"}',
        }
    )
    result = measure_at(dataset, [errors, good])
    assert result.expressions == 8 * 3  # errors, good, and the shared total
    assert_expected(result, errors, "steady")
    assert_expected(result, good, "steady")


def test_a_refused_query_does_not_blind_the_others(dataset: Dataset) -> None:
    jobs = [job for job in JOBS for _ in range(10)]  # 60 SLOs
    specs = [spec(distinct_sli(job, index)) for index, job in enumerate(jobs)]
    refused = spec({"kind": "query", "error_ratio_query": REFUSED_QUERY})
    specs.insert(17, refused)
    result = measure_at(dataset, specs)

    outcome = result.outcomes[refused.id]
    assert outcome.evaluation is None
    assert outcome.error is not None
    assert outcome.error.startswith("Prometheus refused the query: ")
    assert "duplicate series" in outcome.error
    for slo, job in zip([s for s in specs if s is not refused], jobs, strict=True):
        assert_expected(result, slo, job)
    # 968 expressions in 10 chunks; the refused ones are found by halving their chunk, each
    # in at most 2 x 7 more queries: still far fewer queries than expressions.
    chunks = math.ceil(result.expressions / 100)
    assert chunks < result.queries_sent <= chunks + 2 * 7 * 8
    assert result.queries_sent < result.expressions / 10


def test_chunks_of_one_still_answer_everything(dataset: Dataset) -> None:
    specs = [spec(sli_for(job)) for job in JOBS]
    result = measure_at(dataset, specs, chunk_size=1)
    assert result.queries_sent == result.expressions
    for slo, job in zip(specs, JOBS, strict=True):
        assert_expected(result, slo, job)


def test_a_calendar_slo_queries_its_elapsed_window(dataset: Dataset) -> None:
    slo = spec(sli_for("steady"), calendar_period="month", timezone="Pacific/Auckland")
    result = measure_at(dataset, [slo])
    outcome = result.outcomes[slo.id]
    assert outcome.evaluation is not None
    assert outcome.evaluation.sli_value == pytest.approx(99.95, abs=1e-6)
    slo_window = outcome.queries["slo"]
    assert slo_window.total is not None
    assert "[30d]" not in slo_window.total


# --- run_batched on its own -----------------------------------------------------------------


def test_run_batched_answers_each_expression(dataset: Dataset) -> None:
    expressions = [
        'sum(increase(http_requests_total{job="steady"}[30d]))',
        'sum(count_over_time(probe_success{job="probe"}[30d]))',
        'sum(increase(http_requests_total{job="nodata"}[30d]))',  # empty vector: no data
        "sum(vector(0) / vector(0))",  # NaN: no data
        "vector(7)",
    ]
    result = with_client(
        dataset.server.url, lambda client: run_batched(client, expressions * 2, dataset.at)
    )
    assert result.queries_sent == 1
    assert result.errors == {}
    assert result.values == {
        expressions[0]: pytest.approx(4_320_000, rel=1e-9),
        expressions[1]: 43_201,
        expressions[2]: None,
        expressions[3]: None,
        expressions[4]: 7,
    }


def test_run_batched_isolates_each_refused_expression(dataset: Dataset) -> None:
    good = [f"vector({n})" for n in range(16)]
    bad = [
        'rate(http_requests_total{job="steady"}[5m]) / on() rate(http_requests_total[5m])',
        'label_replace(http_requests_total{job="steady"}, "code", "x", "", "")',
    ]
    expressions = [*good[:5], bad[0], *good[5:11], bad[1], *good[11:]]
    result = with_client(
        dataset.server.url, lambda client: run_batched(client, expressions, dataset.at)
    )
    assert set(result.errors) == set(bad)
    assert result.values == {expr: float(n) for n, expr in enumerate(good)}
    # 1 + 2 + 4 + 4 + 4 at most: each bad one is found by halving.
    assert 3 <= result.queries_sent <= 15


def test_the_tag_label_finds_each_answer_again() -> None:
    joined = _joined(["vector(1)", "vector(2)"])
    assert joined == (
        f'label_replace(vector(1), "{TAG}", "0", "", "")'
        f' or label_replace(vector(2), "{TAG}", "1", "", "")'
    )


def test_an_unreachable_prometheus_fails_the_whole_pass() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    slo = spec(sli_for("steady"))
    with pytest.raises(PrometheusUnavailableError):
        with_client(
            url, lambda client: measure(client, [slo], datetime.now().astimezone()), attempts=1
        )


def test_measuring_nothing_sends_nothing(dataset: Dataset) -> None:
    result = measure_at(dataset, [])
    assert result == PassResult({}, 0, 0)
    counts = Counts(bad=1, total=0)
    assert counts.error_ratio is None
