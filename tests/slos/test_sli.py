"""SLI definitions (sli.py): what each kind accepts and refuses, checked with a real PromQL
parser. Pure: no I/O (the API tests check the same through HTTP, with Prometheus)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reliability_studio.slos.engine import SLI_ADAPTER
from reliability_studio.slos.sli import (
    BoolGaugeSLI,
    LatencySLI,
    QuerySLI,
    RatioSLI,
    parse_selector,
)


def errors_of(definition: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(location, message) of each error validating `definition`."""
    with pytest.raises(ValidationError) as raised:
        SLI_ADAPTER.validate_python(definition)
    return [(tuple(error["loc"]), error["msg"]) for error in raised.value.errors()]


def test_each_kind_parses_to_its_model() -> None:
    kinds = {
        RatioSLI: {"kind": "ratio", "errors": 'r{code="500"}', "total": "r"},
        LatencySLI: {"kind": "latency", "histogram": "h_bucket", "threshold_seconds": 0.3},
        BoolGaugeSLI: {"kind": "bool_gauge", "metric": "probe_success"},
        QuerySLI: {"kind": "query", "error_ratio_query": "1 - avg_over_time(up[{{window}}])"},
    }
    for model, definition in kinds.items():
        assert isinstance(SLI_ADAPTER.validate_python(definition), model)


def test_selectors_are_trimmed() -> None:
    parsed = SLI_ADAPTER.validate_python({"kind": "bool_gauge", "metric": '  up{job="x"} \n'})
    assert isinstance(parsed, BoolGaugeSLI)
    assert parsed.metric == 'up{job="x"}'


@pytest.mark.parametrize(
    ("definition", "location", "message"),
    [
        ({"kind": "apdex"}, (), "does not match any of the expected tags"),
        ({"total": "r"}, (), "Unable to extract tag using discriminator"),
        ({"kind": "ratio", "total": "r"}, ("ratio",), "exactly one of errors or good"),
        (
            {"kind": "ratio", "total": "r", "errors": "e", "good": "g"},
            ("ratio",),
            "exactly one of errors or good",
        ),
        ({"kind": "ratio", "errors": "e", "total": "r{"}, ("ratio", "total"), "not valid PromQL"),
        (
            {"kind": "ratio", "errors": "rate(e[5m])", "total": "r"},
            ("ratio", "errors"),
            "plain series selector",
        ),
        (
            {"kind": "ratio", "errors": "e", "total": "sum(r)"},
            ("ratio", "total"),
            "plain series selector",
        ),
        ({"kind": "ratio", "errors": "e[5m]", "total": "r"}, ("ratio", "errors"), "selector"),
        ({"kind": "ratio", "errors": "e offset 5m", "total": "r"}, ("ratio", "errors"), "offset"),
        ({"kind": "ratio", "errors": "e @ 100", "total": "r"}, ("ratio", "errors"), "offset or @"),
        ({"kind": "ratio", "errors": "e", "total": '{job="x"}'}, ("ratio", "total"), "metric"),
        ({"kind": "ratio", "errors": "e", "total": 'r{a="1" or a="2"}'}, ("ratio", "total"), "or"),
        ({"kind": "ratio", "errors": "e", "total": ""}, ("ratio", "total"), "at least 1"),
        ({"kind": "ratio", "errors": "e", "total": "r", "x": 1}, ("ratio", "x"), "Extra inputs"),
        (
            {"kind": "latency", "histogram": "h_count", "threshold_seconds": 1},
            ("latency", "histogram"),
            "_bucket",
        ),
        (
            {"kind": "latency", "histogram": 'h_bucket{le="1"}', "threshold_seconds": 1},
            ("latency", "histogram"),
            "must not match on le",
        ),
        (
            {"kind": "latency", "histogram": "sum(h_bucket)", "threshold_seconds": 1},
            ("latency", "histogram"),
            "plain series selector",
        ),
        (
            {"kind": "latency", "histogram": "h_bucket", "threshold_seconds": 0},
            ("latency", "threshold_seconds"),
            "greater than 0",
        ),
        (
            {"kind": "latency", "histogram": "h_bucket", "threshold_seconds": float("inf")},
            ("latency", "threshold_seconds"),
            "finite number",
        ),
        (
            {"kind": "latency", "histogram": "h_bucket"},
            ("latency", "threshold_seconds"),
            "required",
        ),
        (
            {"kind": "bool_gauge", "metric": "up == 1"},
            ("bool_gauge", "metric"),
            "plain series selector",
        ),
        (
            {"kind": "query", "error_ratio_query": "sum(rate(e[5m]))"},
            ("query",),
            "must contain {{window}}",
        ),
        (
            {"kind": "query", "error_ratio_query": "sum(rate(e[{{window}}])"},
            ("query",),
            "not valid PromQL",
        ),
        ({"kind": "query", "error_ratio_query": "   "}, ("query", "error_ratio_query"), "at least"),
    ],
)
def test_refused_definitions_say_where_and_why(
    definition: dict[str, Any], location: tuple[str, ...], message: str
) -> None:
    found = errors_of(definition)
    assert any(loc == location and message in msg for loc, msg in found), found


def test_parse_selector_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^histogram must be a plain series selector"):
        parse_selector("rate(x[5m])", "histogram")
    parsed = parse_selector('x{a="b"}', "total")
    assert parsed.name == "x"


def test_the_histogram_base_name() -> None:
    latency = LatencySLI(kind="latency", histogram='h_seconds_bucket{a="b"}', threshold_seconds=1)
    assert latency.histogram_name_without_suffix() == "h_seconds"


def test_a_query_may_use_the_window_several_times() -> None:
    query = "sum(rate(e[{{window}}])) / sum(rate(t[{{window}}]))"
    parsed = SLI_ADAPTER.validate_python({"kind": "query", "error_ratio_query": query})
    assert isinstance(parsed, QuerySLI)
    assert parsed.error_ratio_query == query


def test_a_stored_sli_round_trips() -> None:
    definition = {"kind": "ratio", "good": 'r{code="200"}', "total": "r"}
    parsed = SLI_ADAPTER.validate_python(definition)
    assert SLI_ADAPTER.validate_python(parsed.model_dump()) == parsed
