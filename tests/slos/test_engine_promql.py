"""The PromQL the engine writes for each SLI (promql.py). Pure: checked with the PromQL parser;
the real Prometheus runs these queries in the engine tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import promql_parser
import pytest

from reliability_studio.slos.engine import SLI_ADAPTER, measured_expressions
from reliability_studio.slos.promql import (
    le_matcher,
    le_spellings,
    prometheus_duration,
    quote,
    renamed,
    window_queries,
    with_matcher,
)
from reliability_studio.slos.sli import parse_selector


def sli(**fields: Any) -> Any:
    """A validated SLI."""
    return SLI_ADAPTER.validate_python(fields)


def matchers_of(selector: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of each matcher, as the parser reads them."""
    parsed = parse_selector(selector, "selector")
    return [(m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in parsed.matchers.matchers]


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=6), "6h"),
        (timedelta(days=3), "3d"),
        (timedelta(days=30), "30d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=1_234_567), "1234567s"),
        (timedelta(seconds=61, microseconds=500), "61s"),
    ],
)
def test_prometheus_durations(window: timedelta, text: str) -> None:
    assert prometheus_duration(window) == text


@pytest.mark.parametrize(
    ("threshold", "spellings"),
    [
        (0.3, ["0.3"]),
        (1.0, ["1", "1.0"]),  # Go writes 1, Python's client 1.0
        (1, ["1", "1.0"]),
        (2.5, ["2.5"]),
        (10.0, ["10", "10.0"]),
        (0.005, ["0.005"]),
    ],
)
def test_le_spellings(threshold: float, spellings: list[str]) -> None:
    assert le_spellings(threshold) == spellings


def test_le_matchers_match_every_spelling_and_nothing_else() -> None:
    assert le_matcher(0.3) == 'le="0.3"'
    assert le_matcher(1.0) == 'le=~"1|1\\\\.0"'
    assert le_matcher(0.3, "0.30") == 'le="0.30"'
    # What Prometheus receives: the regex 1|1\.0, anchored, so 10 and 1x0 do not match.
    [(name, op, value)] = matchers_of(with_matcher("x_bucket", le_matcher(1.0)))
    assert (name, op, value) == ("le", "Re", "1|1\\.0")


def test_with_matcher_adds_a_matcher() -> None:
    assert with_matcher('h_bucket{job="api"}', 'le="0.3"') == 'h_bucket{job="api",le="0.3"}'
    assert with_matcher("h_bucket", 'le="0.3"') == 'h_bucket{le="0.3"}'
    assert with_matcher("h_bucket{}", 'le="0.3"') == 'h_bucket{le="0.3"}'


@pytest.mark.parametrize(
    "selector",
    [
        'h_bucket{path="/a\\"b"}',  # an escaped quote
        'h_bucket{path=~"/api/.*\\\\.json"}',  # a regex with an escaped dot
        'h_bucket{code=~"5\\\\d\\\\d",method!="GET",zone!~"eu-.*"}',
        'h_bucket{path="back\\\\slash"}',
        "h_bucket{path='single'}",
        "h_bucket{path=`raw`}",
        'h_bucket{msg="two\\nlines"}',
    ],
)
def test_rewritten_selectors_keep_their_matchers_exactly(selector: str) -> None:
    """The parser's own printing drops escapes; the engine's must not."""
    added = with_matcher(selector, 'le="0.3"')
    assert matchers_of(added) == [*matchers_of(selector), ("le", "Equal", "0.3")]
    moved = renamed(selector, "h_count")
    assert parse_selector(moved, "selector").name == "h_count"
    assert matchers_of(moved) == matchers_of(selector)


def test_quote_escapes_for_promql() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    value = 'a"b\\'
    parsed = promql_parser.parse("x{a=" + quote(value) + "}")
    assert isinstance(parsed, promql_parser.VectorSelector)
    assert parsed.matchers.matchers[0].value == value


def test_renamed_keeps_the_matchers() -> None:
    assert renamed('h_bucket{job="api"}', "h_count") == 'h_count{job="api"}'
    assert renamed("h_bucket", "h_count") == "h_count{}"


# --- the queries of each kind ---------------------------------------------------------------


def test_ratio_with_errors_counts_errors_and_total() -> None:
    queries = window_queries(
        sli(kind="ratio", errors='r{code="500"}', total="r"), timedelta(hours=1)
    )
    assert queries.bad == 'sum(increase(r{code="500"}[1h]))'
    assert queries.total == "sum(increase(r[1h]))"
    assert queries.good is None
    assert queries.ratio is None


def test_ratio_with_good_counts_good_and_total() -> None:
    queries = window_queries(sli(kind="ratio", good='r{code="200"}', total="r"), timedelta(days=30))
    assert queries.good == 'sum(increase(r{code="200"}[30d]))'
    assert queries.total == "sum(increase(r[30d]))"
    assert queries.bad == f"{queries.total} - {queries.good}"
    # The engine asks for good and total: a missing good series is zero good events.
    assert measured_expressions(queries) == [queries.good, queries.total]


def test_latency_counts_the_threshold_bucket_against_the_histogram_count() -> None:
    queries = window_queries(
        sli(kind="latency", histogram='h_bucket{job="api"}', threshold_seconds=0.3),
        timedelta(minutes=5),
    )
    assert queries.good == 'sum(increase(h_bucket{job="api",le="0.3"}[5m]))'
    assert queries.total == 'sum(increase(h_count{job="api"}[5m]))'
    assert measured_expressions(queries) == [queries.good, queries.total]


def test_a_bool_gauge_counts_samples() -> None:
    queries = window_queries(sli(kind="bool_gauge", metric="probe_success"), timedelta(days=1))
    assert queries.good == "sum(sum_over_time(probe_success[1d]))"
    assert queries.total == "sum(count_over_time(probe_success[1d]))"


def test_a_query_sli_fills_in_the_window_and_takes_the_worst_series() -> None:
    text = "sum by (r) (rate(e[{{window}}])) / sum by (r) (rate(t[{{window}}]))"
    queries = window_queries(sli(kind="query", error_ratio_query=text), timedelta(hours=6))
    assert queries.ratio == "sum by (r) (rate(e[6h])) / sum by (r) (rate(t[6h]))"
    assert queries.bad is None
    assert queries.total is None
    assert measured_expressions(queries) == [f"max({queries.ratio})"]


@pytest.mark.parametrize(
    "definition",
    [
        {"kind": "ratio", "errors": 'r{code=~"5.."}', "total": "r"},
        {"kind": "ratio", "good": 'r{code!~"5.."}', "total": "r"},
        {"kind": "latency", "histogram": 'h_bucket{a="\\\\d"}', "threshold_seconds": 1},
        {"kind": "bool_gauge", "metric": 'up{job="x"}'},
        {"kind": "query", "error_ratio_query": "1 - avg_over_time(up[{{window}}])"},
    ],
)
def test_every_query_is_valid_promql(definition: dict[str, Any]) -> None:
    for window in (timedelta(minutes=5), timedelta(days=30), timedelta(seconds=1_234_567)):
        queries = window_queries(sli(**definition), window)
        for expr in (queries.bad, queries.total, queries.good, *measured_expressions(queries)):
            if expr is not None:
                promql_parser.parse(expr)
