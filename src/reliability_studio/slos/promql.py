"""PromQL that the engine and the exported rules use for each SLI. Pure, no I/O.

Every kind is reduced to two sums over a window, bad and total events, so that a ratio is
always computed from counts (never by averaging ratios). `query` SLIs are the exception:
they give a ratio directly and have no counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import promql_parser

from reliability_studio.slos.sli import (
    SLI,
    WINDOW_PLACEHOLDER,
    BoolGaugeSLI,
    LatencySLI,
    QuerySLI,
    RatioSLI,
    parse_selector,
)


@dataclass(frozen=True)
class WindowQueries:
    """The PromQL for one SLI over one window: counts, or (for `query`) a ratio.

    `good` is set when the SLI counts good events (then `bad` is `total - good`): a good
    counter with no series yet means that no event was good, not that there is no data,
    and only the good count itself tells the two apart.
    """

    bad: str | None
    total: str | None
    ratio: str | None = None
    good: str | None = None


def prometheus_duration(window: timedelta) -> str:
    """A Prometheus duration for `window`: `5m`, `1h`, `30d`, or seconds when uneven."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def with_matcher(selector: str, matcher: str) -> str:
    """`selector` with one more label matcher, e.g. `le="0.3"`."""
    parsed = parse_selector(selector, "selector")
    return _render(str(parsed.name), [*_matchers(parsed), matcher])


def renamed(selector: str, new_name: str) -> str:
    """`selector` with another metric name and the same matchers."""
    return _render(new_name, _matchers(parse_selector(selector, "selector")))


# The parser's own str() drops the escapes of label values: `a\"b` comes back as `a"b`
# and a regex's `5\\d` as `5\d`, which Prometheus refuses. Selectors are written out here.
_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _matchers(parsed: promql_parser.VectorSelector) -> list[str]:
    return [f"{m.name}{_operator(m.op)}{quote(m.value)}" for m in parsed.matchers.matchers]


def _operator(op: promql_parser.MatchOp) -> str:
    return next(text for known, text in _OPERATORS if op == known)


def _render(name: str, matchers: list[str]) -> str:
    return f"{name}{{{','.join(matchers)}}}"


def quote(value: str) -> str:
    """`value` as a PromQL double-quoted string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def le_spellings(threshold_seconds: float) -> list[str]:
    """The ways client libraries write this bucket bound as `le`: Go writes `1` and `0.3`,
    Python `1.0` and `0.3`."""
    python = repr(float(threshold_seconds))
    go = python.removesuffix(".0")
    return list(dict.fromkeys([go, python]))


def le_matcher(threshold_seconds: float, le_label: str | None = None) -> str:
    """A matcher for the bucket at the threshold, in whichever spelling the series use."""
    if le_label is not None:
        return f'le="{le_label}"'
    spellings = le_spellings(threshold_seconds)
    if len(spellings) == 1:
        return f'le="{spellings[0]}"'
    return 'le=~"' + "|".join(spelling.replace(".", "\\\\.") for spelling in spellings) + '"'


def window_queries(sli: SLI, window: timedelta, le_label: str | None = None) -> WindowQueries:
    """The queries for `sli` over `window`. `le_label` overrides the bucket's `le` text."""
    w = prometheus_duration(window)
    if isinstance(sli, RatioSLI):
        total = f"sum(increase({sli.total}[{w}]))"
        if sli.errors is not None:
            return WindowQueries(bad=f"sum(increase({sli.errors}[{w}]))", total=total)
        assert sli.good is not None
        return _good_and_total(f"sum(increase({sli.good}[{w}]))", total)
    if isinstance(sli, LatencySLI):
        bucket = with_matcher(sli.histogram, le_matcher(sli.threshold_seconds, le_label or sli.le))
        count = renamed(sli.histogram, sli.histogram_name_without_suffix() + "_count")
        return _good_and_total(f"sum(increase({bucket}[{w}]))", f"sum(increase({count}[{w}]))")
    if isinstance(sli, BoolGaugeSLI):
        return _good_and_total(
            f"sum(sum_over_time({sli.metric}[{w}]))", f"sum(count_over_time({sli.metric}[{w}]))"
        )
    assert isinstance(sli, QuerySLI)
    return WindowQueries(
        bad=None, total=None, ratio=sli.error_ratio_query.replace(WINDOW_PLACEHOLDER, w)
    )


def _good_and_total(good: str, total: str) -> WindowQueries:
    return WindowQueries(bad=f"{total} - {good}", total=total, good=good)
